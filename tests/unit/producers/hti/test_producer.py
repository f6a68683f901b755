"""HtiProducer against the in-process simulator, publishing into memory:
session logic (history + stream, dedup, reconnect, stall, gap, DLQ, 401, 429)
without Kafka. The same scenarios run against the real stack in
tests/integration/producers/hti/."""

import json
import logging
import threading
import time

import pytest

from producers.hti.client import AuthRejected
from producers.hti.run import HtiProducer
from simulators.hti.profiles import unlimited_profile
from tests.unit.producers.hti.fakes import (
    CODE, keys, ledger_ideas, memory_publisher, producer_settings, running, simulator, wait_until,
)
from tradebus import metrics
from tradebus.topics import DLQ, HTI_IDEAS, STATUS


def statuses(publisher, kind=None):
    return [s for s in publisher.producer.of(STATUS) if kind is None or s["kind"] == kind]


def test_history_then_stream_exactly_the_ledger_in_order():
    sim = simulator(extra_field=True)
    try:
        sim.emit_burst(30)
        latest = {}
        for key in ledger_ideas(sim):
            latest[key[0]] = key  # history holds the latest version of each idea
        with running(producer_settings(sim)) as run:
            publisher = run.producer.publisher
            wait_until(lambda: statuses(publisher, "connected"), message="connected status")
            assert len(publisher.producer.of(HTI_IDEAS)) == len(latest)
            sim.emit_burst(25)
            wait_until(lambda: len(publisher.producer.of(HTI_IDEAS)) >= len(latest) + 25, message="stream published")
            time.sleep(0.3)
        assert run.error is None
        ideas = publisher.producer.of(HTI_IDEAS)
        ledger = ledger_ideas(sim)
        history = [i for i in ideas if i["metadata"]["upstream_event"] == "history"]
        stream = [i for i in ideas if i["metadata"]["upstream_event"] == "idea"]
        assert all(i["metadata"]["replay"] for i in history) and not any(i["metadata"]["replay"] for i in stream)
        # History holds the latest version of each of the first 30 versions' ideas; every version after it comes by stream.
        assert len(keys(ideas)) == len(set(keys(ideas)))
        assert keys(stream) == ledger[30:]  # in emission order
        assert set(keys(history)) == set(latest.values())
        by_key = {(e["idea_id"], e["LAST_UPDATE"]): e["json"] for e in sim.ledger_entries() if e["kind"] == "idea"}
        for idea in stream:
            assert idea["upstream_json"] == by_key[(idea["idea_id"], idea["last_update_text"])]
        for idea in history:
            assert json.loads(idea["upstream_json"]) == json.loads(by_key[(idea["idea_id"], idea["last_update_text"])])
        assert all("RISK_SCORE" in i["unknown_fields"] for i in ideas)
        assert [s["kind"] for s in statuses(publisher)][0] == "started"
        assert statuses(publisher)[-1]["kind"] == "stopped"
        assert statuses(publisher, "connected")[0]["details"]["poll_seconds"] == "1.0"
    finally:
        sim.stop()


def test_dropped_streams_lose_nothing_and_duplicate_nothing():
    # No updates: an update superseded while disconnected cannot come back through /history (latest
    # version only); the integration test covers that case. Here every version must arrive.
    sim = simulator(rate=15, update_probability=0.0)
    try:
        with running(producer_settings(sim)) as run:
            publisher = run.producer.publisher
            wait_until(lambda: statuses(publisher, "connected"), message="connected")
            for round_ in range(2):
                time.sleep(1.0)
                assert sim.drop_streams() == 1
                wait_until(lambda: len(statuses(publisher, "connected")) >= round_ + 2, message="reconnected")
            time.sleep(1.0)
            sim.pause_generation()
            wait_until(lambda: set(keys(publisher.producer.of(HTI_IDEAS))) >= set(ledger_ideas(sim)),
                       message="every ledger idea published")
        published = keys(publisher.producer.of(HTI_IDEAS))
        assert len(published) == len(set(published)) == len(ledger_ideas(sim))
        assert run.producer.counters.reconnects >= 2 and len(statuses(publisher, "disconnected")) >= 2
        assert run.producer.counters.duplicates > 0  # backfill overlap was dropped
        assert not statuses(publisher, "gap")
    finally:
        sim.stop()


def test_stalled_stream_detected_and_missed_ideas_backfilled():
    sim = simulator(update_probability=0.0)
    try:
        with running(producer_settings(sim)) as run:  # poll 1 s -> stall after 3 s
            publisher = run.producer.publisher
            wait_until(lambda: statuses(publisher, "connected"), message="connected")
            sim.stall(True)
            time.sleep(0.6)
            sim.emit_burst(5)  # sent by no stream while stalled
            wait_until(lambda: statuses(publisher, "disconnected"), timeout=10, message="stall detected")
            sim.stall(False)
            wait_until(lambda: len(statuses(publisher, "connected")) >= 2, message="reconnected")
            wait_until(lambda: set(keys(publisher.producer.of(HTI_IDEAS))) >= set(ledger_ideas(sim)), message="backfill")
        reason = statuses(publisher, "disconnected")[0]["message"]
        assert "no data from the stream for 3s" in reason or "no ping or idea" in reason
        assert run.error is None
    finally:
        sim.stop()


def test_malformed_lines_dead_lettered_and_producer_lives():
    sim = simulator(malformed_every=3)
    try:
        with running(producer_settings(sim)) as run:
            publisher = run.producer.publisher
            wait_until(lambda: statuses(publisher, "connected"), message="connected")
            sim.emit_burst(12)
            wait_until(lambda: len(publisher.producer.of(HTI_IDEAS)) >= 12, message="ideas")
            malformed = [e for e in sim.ledger_entries() if e["kind"] == "malformed"]
            wait_until(lambda: len(publisher.producer.of(DLQ)) >= len(malformed), message="dead letters")
        dead = publisher.producer.of(DLQ)
        assert len(malformed) >= 4 and len(dead) == len(malformed)
        assert sorted(d["payload"].decode() for d in dead) == sorted(m["data"] for m in malformed)
        assert {d["details"]["reason_code"] for d in dead} <= {"invalid_json", "missing_idea_id"}
        assert {d["stage"] for d in dead} <= {"parse", "convert"} and all(d["upstream_event"] == "idea" for d in dead)
        assert all(d["target_topic"] == HTI_IDEAS.name for d in dead)
        assert sorted(keys(publisher.producer.of(HTI_IDEAS))) == sorted(ledger_ideas(sim))
    finally:
        sim.stop()


def test_wrong_code_is_fatal_at_once_and_never_leaks(caplog):
    sim = simulator()
    wrong = "wrong-code-5b2e9c71"
    try:
        settings = producer_settings(sim, api_code=wrong)
        from tradebus.redaction import register_secret

        register_secret(wrong)  # as Env.str(secret=True) does
        publisher = memory_publisher()
        producer = HtiProducer(settings, publisher, threading.Event())
        started = time.monotonic()
        with caplog.at_level(logging.DEBUG), pytest.raises(AuthRejected) as info:
            producer.run()
        assert time.monotonic() - started < 3
        assert info.value.status == 401 and "Invalid API code" in str(info.value) and wrong not in str(info.value)
        assert [s["kind"] for s in statuses(publisher)] == ["started", "error", "stopped"]
        assert all(wrong not in json.dumps(s, default=str) for s in statuses(publisher))
        assert wrong not in caplog.text
    finally:
        sim.stop()


def test_expired_profile_is_403_fatal():
    sim = simulator(profiles=[unlimited_profile(CODE, "UNIT")])
    try:
        from simulators.hti.profiles import profile_from_mapping

        expired = profile_from_mapping({"api_code": "expired-code-1234", "account_name": "OLD",
                                        "validity_type": "date", "valid_until": "2020-01-01"})
        sim.profiles = type(sim.profiles)([*sim.config.profiles, expired])
        producer = HtiProducer(producer_settings(sim, api_code="expired-code-1234"), memory_publisher(), threading.Event())
        with pytest.raises(AuthRejected) as info:
            producer.run()
        assert info.value.status == 403
    finally:
        sim.stop()


def test_429_honours_retry_after_then_connects():
    sim = simulator()
    try:
        sim.fail_429(2)
        sim.emit_burst(3)
        started = time.monotonic()
        with running(producer_settings(sim)) as run:
            publisher = run.producer.publisher
            wait_until(lambda: statuses(publisher, "connected"), message="connected after 429s")
            waited = time.monotonic() - started
        assert waited >= 1.5  # the Retry-After, not a tight retry loop
        assert len(publisher.producer.of(HTI_IDEAS)) == 3
    finally:
        sim.stop()


def test_5xx_at_start_backs_off_and_recovers():
    sim = simulator()
    try:
        sim.fail_5xx(1.5)
        with running(producer_settings(sim)) as run:
            wait_until(lambda: statuses(run.producer.publisher, "connected"), message="connected after 503s")
    finally:
        sim.stop()


def test_full_page_of_unseen_ideas_reports_a_gap():
    sim = simulator()
    before = metrics.GAPS.labels(source="hti", kind="hti.ideas")._value.get()
    try:
        with running(producer_settings(sim, history_limit=5)) as run:
            publisher = run.producer.publisher
            wait_until(lambda: statuses(publisher, "connected"), message="connected")
            sim.stall(True)
            time.sleep(0.6)  # the stream loop notices the stall within 0.25 s
            sim.emit_burst(12)  # more than a page while the stream says nothing
            wait_until(lambda: statuses(publisher, "disconnected"), timeout=10, message="stall")
            sim.stall(False)
            wait_until(lambda: statuses(publisher, "gap"), message="gap status")
        gap = statuses(publisher, "gap")[0]
        assert gap["event_type"] == "hti.ideas" and gap["details"]["page_size"] == "5"
        assert metrics.GAPS.labels(source="hti", kind="hti.ideas")._value.get() == before + 1
    finally:
        sim.stop()


def test_error_event_published_as_status_and_stream_reopened():
    sim = simulator(error_event_after=3)
    try:
        with running(producer_settings(sim)) as run:
            publisher = run.producer.publisher
            wait_until(lambda: statuses(publisher, "error"), message="error status")
            wait_until(lambda: len(statuses(publisher, "connected")) >= 2, message="reconnected")
        error = statuses(publisher, "error")[0]
        assert json.loads(error["message"]) == {"detail": "simulated stream error"}
        assert error["event_type"] == "error"
    finally:
        sim.stop()


def test_heartbeat_status_is_throttled():
    sim = simulator()
    try:
        with running(producer_settings(sim, heartbeat_status_s=2.0)) as run:
            time.sleep(4.5)
        beats = statuses(run.producer.publisher, "heartbeat")
        assert 1 <= len(beats) <= 3  # pings every second, a heartbeat at most every 2 s
        assert set(beats[0]["details"]) == {"received", "published", "duplicates", "dead_letters", "reconnects", "gaps"}
    finally:
        sim.stop()


def test_stop_wakes_a_blocked_read_promptly():
    sim = simulator()
    try:
        with running(producer_settings(sim, poll_seconds=10.0)) as run:  # reads block up to 30 s
            wait_until(lambda: statuses(run.producer.publisher, "connected"), message="connected")
            time.sleep(0.2)
            stopping = time.monotonic()
        assert time.monotonic() - stopping < 3
        assert run.error is None
        kinds = [s["kind"] for s in statuses(run.producer.publisher)]
        assert kinds[-2:] == ["disconnected", "stopped"]
    finally:
        sim.stop()


def test_runner_exit_codes_and_lifecycle():
    """`tradebus produce hti` runs HtiSource under producers.common.runner: 3 for a refused code, 0 on stop."""
    from producers.hti.run import run
    from tradebus.config import CommonSettings, Env

    sim = simulator()
    common = CommonSettings.from_env(Env({"TRADEBUS_HTTP_PORT": "0", "TRADEBUS_SHUTDOWN_TIMEOUT_SECONDS": "5"}))
    try:
        publisher = memory_publisher()
        assert run(producer_settings(sim, api_code="refused-code-31337"), common, stop=threading.Event(),
                   publisher=publisher) == 3
        assert [s["kind"] for s in statuses(publisher)] == ["started", "error", "stopped"]
        assert statuses(publisher)[-1]["details"]["exit_code"] == "3"

        publisher, stop, result = memory_publisher(), threading.Event(), {}
        thread = threading.Thread(target=lambda: result.setdefault("code", run(producer_settings(sim), common, stop=stop,
                                                                                  publisher=publisher)))
        thread.start()
        wait_until(lambda: statuses(publisher, "connected"), message="connected")
        sim.emit_burst(3)
        wait_until(lambda: len(publisher.producer.of(HTI_IDEAS)) >= 3, message="ideas")
        stop.set()
        thread.join(10)
        assert result["code"] == 0
        assert [s["kind"] for s in statuses(publisher)][-2:] == ["disconnected", "stopped"]
    finally:
        sim.stop()
