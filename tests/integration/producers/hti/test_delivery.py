"""History plus stream give exactly the ledger's ideas on hti.ideas.v1;
malformed data reaches the DLQ while the producer lives; a 429 backs off."""

import json
import time

from tests.integration.producers.hti.conftest import (
    hti_settings, idea_keys, latest_versions, ledger_versions, wait_until,
)
from tradebus.topics import HTI_IDEAS


def test_history_and_stream_give_exactly_the_ledger(start_sim, start_producer, common, reader):
    sim = start_sim(extra_field=True, multiline_probability=0.5)
    sim.emit_burst(40)  # before the producer: history only
    latest = latest_versions(sim)
    producer = start_producer(hti_settings(sim), common)
    wait_until(lambda: producer.producer.stream_open and producer.producer.counters.published >= len(latest),
               message="history published")
    sim.set_rate(20)
    time.sleep(3)
    sim.pause_generation()
    time.sleep(0.5)  # the generator finishes the batch it is in
    sim.emit_burst(10)
    expected_stream = ledger_versions(sim)[40:]
    wait_until(lambda: producer.producer.counters.published >= len(latest) + len(expected_stream), message="stream")
    assert producer.stop() is None

    records = reader.read(HTI_IDEAS)
    values = [v for _, v, _ in records]
    assert sorted(idea_keys(values)) == sorted([*latest, *expected_stream])  # nothing lost, nothing twice
    assert all(key == value["idea_id"].encode() for key, value, _ in records)  # keyed by idea id
    stream = [v for v in values if v["metadata"]["upstream_event"] == "idea"]
    history = [v for v in values if v["metadata"]["upstream_event"] == "history"]
    assert len(history) == len(latest) and all(v["metadata"]["replay"] for v in history)
    assert not any(v["metadata"]["replay"] for v in stream)
    # Per key (= per partition order), versions arrive in emission order.
    order = {key: i for i, key in enumerate(ledger_versions(sim))}
    per_idea = {}
    for value in values:
        per_idea.setdefault(value["idea_id"], []).append(order[(value["idea_id"], value["last_update_text"])])
    assert all(seq == sorted(seq) for seq in per_idea.values())
    texts = {(e["idea_id"], e["LAST_UPDATE"]): e["json"] for e in sim.ledger_entries() if e["kind"] == "idea"}
    for value in stream:
        assert value["upstream_json"] == texts[(value["idea_id"], value["last_update_text"])]
    for value in values:
        idea = json.loads(value["upstream_json"])
        assert value["confidence"] == float(idea["CONFIDENCE"].rstrip("%")) / 100
        assert value["unknown_fields"] == {"RISK_SCORE": json.dumps(idea["RISK_SCORE"], separators=(",", ":"))}
        assert value["last_update"].tzinfo is not None
    kinds = [s["kind"] for s in reader.statuses()]
    assert kinds[0] == "started" and "connected" in kinds and kinds[-1] == "stopped"


def test_malformed_lines_reach_the_dlq_while_the_producer_lives(start_sim, start_producer, common, reader):
    sim = start_sim(malformed_every=4)
    producer = start_producer(hti_settings(sim), common)
    wait_until(lambda: producer.producer.stream_open, message="connected")
    sim.set_rate(10.0)
    time.sleep(4)
    sim.pause_generation()
    time.sleep(0.5)
    malformed = [e for e in sim.ledger_entries() if e["kind"] == "malformed"]
    versions = ledger_versions(sim)
    wait_until(lambda: producer.producer.counters.dead_letters >= len(malformed)
               and producer.producer.counters.published >= len(versions), message="dead letters and ideas")
    assert producer.thread.is_alive()
    assert producer.stop() is None
    dead = reader.dead_letters()
    assert len(malformed) >= 3 and sorted(d["payload"].decode() for d in dead) == sorted(m["data"] for m in malformed)
    assert {d["details"]["reason_code"] for d in dead} == {"invalid_json", "missing_idea_id"}
    assert all(d["source"] == "hti" and d["payload_encoding"] == "text" and d["upstream_event"] == "idea" for d in dead)
    assert sorted(idea_keys(reader.values(HTI_IDEAS))) == sorted(set(versions))


def test_429_backs_off_instead_of_hammering(start_sim, start_producer, common, reader):
    sim = start_sim()
    sim.emit_burst(5)
    sim.fail_429(3)
    started = time.monotonic()
    producer = start_producer(hti_settings(sim), common)
    wait_until(lambda: producer.producer.stream_open, message="connected after the 429 period")
    assert time.monotonic() - started >= 2.5
    expected = latest_versions(sim)
    wait_until(lambda: producer.producer.counters.published >= len(expected), message="history")
    assert producer.stop() is None
    assert set(idea_keys(reader.values(HTI_IDEAS))) == expected
