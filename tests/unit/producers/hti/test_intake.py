"""IdeaIntake on its own: history pages (exact text, DLQ, dedup, gap) and stream events."""

import json

from producers.hti.intake import IdeaIntake
from producers.hti.settings import HtiProducerSettings
from producers.hti.sse import SseEvent
from tests.unit.producers.hti.fakes import memory_publisher
from tradebus.topics import DLQ, HTI_IDEAS, STATUS


def idea(n, last_update="2026-04-22 09:17:47 EST"):
    return {"ID": f"HTI11_TB_X_M5_{n}", "idea_id": f"HTI11_TB_X_M5_{n}", "LAST_UPDATE": last_update, "CONFIDENCE": "90%"}


def history_body(items, spaced=False):
    texts = [json.dumps(i, indent=2 if spaced else None) if not isinstance(i, str) else i for i in items]
    return ('{"status": "ok", "count": %d, "ideas": [%s]}' % (len(texts), ", ".join(texts))).encode()


def intake(limit=3, **kw):
    profiles = []
    settings = HtiProducerSettings(api_code="unit-code-7d1f0a9b", history_limit=limit, **kw)
    return IdeaIntake(settings, memory_publisher(), on_profile=profiles.append), profiles


def test_history_published_with_exact_text_and_replay_flag():
    intake_, _ = intake()
    body = history_body([idea(1), idea(2)], spaced=True)
    intake_.backfill(body, reconnect=False)
    ideas = intake_.publisher.producer.of(HTI_IDEAS)
    assert [i["idea_id"] for i in ideas] == ["HTI11_TB_X_M5_1", "HTI11_TB_X_M5_2"]
    assert ideas[0]["upstream_json"] == json.dumps(idea(1), indent=2)  # the slice of the body, spacing kept
    assert all(i["metadata"]["upstream_event"] == "history" and i["metadata"]["replay"] for i in ideas)


def test_bad_history_items_and_bodies_are_dead_lettered():
    intake_, _ = intake(limit=50)
    intake_.backfill(history_body([idea(1), "42", '{"ID": "no-time"}', '{"ID": "Y", "LAST_UPDATE": "soon"}']), False)
    intake_.backfill(b"<html>502 Bad Gateway</html>", False)
    intake_.backfill(b'{"ideas": "none"}', False)
    intake_.backfill(b'\xff\xfe{"ideas": []}', False)
    dead = intake_.publisher.producer.of(DLQ)
    assert [d["details"]["reason_code"] for d in dead] == [
        "not_an_object", "missing_last_update", "bad_time", "invalid_json", "bad_history", "invalid_json"]
    assert [d["stage"] for d in dead] == ["parse", "convert", "convert", "parse", "parse", "parse"]
    assert dead[0]["payload"] == b"42" and dead[3]["payload"] == b"<html>502 Bad Gateway</html>"
    assert all(d["upstream_event"] == "history" for d in dead)
    assert len(intake_.publisher.producer.of(HTI_IDEAS)) == 1


def test_history_overlap_dropped_and_new_versions_published():
    intake_, _ = intake()
    intake_.backfill(history_body([idea(1), idea(2)]), False)
    intake_.backfill(history_body([idea(1), idea(2, "2026-04-22 09:18:00 EST")]), True)
    assert [(i["idea_id"], i["last_update_text"][-12:]) for i in intake_.publisher.producer.of(HTI_IDEAS)] == [
        ("HTI11_TB_X_M5_1", "09:17:47 EST"), ("HTI11_TB_X_M5_2", "09:17:47 EST"), ("HTI11_TB_X_M5_2", "09:18:00 EST")]
    assert intake_.counters.duplicates == 1


def test_gap_only_for_a_full_page_of_unseen_versions_after_a_reconnect():
    intake_, _ = intake(limit=3)
    intake_.backfill(history_body([idea(1), idea(2), idea(3)]), reconnect=False)  # first start: no gap
    intake_.backfill(history_body([idea(4), idea(5)]), reconnect=True)  # not a full page
    intake_.backfill(history_body([idea(6), idea(7), idea(5)]), reconnect=True)  # one already seen
    assert not [s for s in intake_.publisher.producer.of(STATUS) if s["kind"] == "gap"]
    intake_.backfill(history_body([idea(8), idea(9), idea(10)]), reconnect=True)
    gaps = [s for s in intake_.publisher.producer.of(STATUS) if s["kind"] == "gap"]
    assert len(gaps) == 1 and gaps[0]["details"]["history_limit"] == "3" and intake_.counters.gaps == 1


def test_stream_events_liveness_profile_and_error_status():
    intake_, profiles = intake()
    assert intake_.handle_events([SseEvent("ready", '{"poll_seconds": 3.5, "profile": {"request_limit_per_minute": 5}}', "")])
    assert intake_.poll_seconds == 3.5 and profiles == [{"request_limit_per_minute": 5}]
    assert intake_.handle_events([SseEvent("ping", "{}", "")])
    assert not intake_.handle_events([SseEvent("error", '{"detail": "API profile expired"}', "")])
    assert not intake_.handle_events([SseEvent("message", "hello", ""), SseEvent("surprise", "{}", "")])
    assert intake_.handle_events([SseEvent("idea", json.dumps(idea(1)), "7")])
    assert intake_.handle_events([SseEvent("idea", "{broken", "8")])
    errors = [s for s in intake_.publisher.producer.of(STATUS) if s["kind"] == "error"]
    assert errors[0]["message"] == '{"detail": "API profile expired"}' and errors[0]["event_type"] == "error"
    assert len(intake_.publisher.producer.of(HTI_IDEAS)) == 1 and len(intake_.publisher.producer.of(DLQ)) == 1


def test_heartbeat_at_most_every_interval(monkeypatch):
    intake_, _ = intake(heartbeat_status_s=30.0)
    clock = [1000.0]
    monkeypatch.setattr("producers.hti.intake.time.monotonic", lambda: clock[0])
    intake_._last_heartbeat = 0.0
    for step in range(10):
        clock[0] = 1000.0 + step * 10
        intake_.handle_events([SseEvent("ping", "{}", "")])
    beats = [s for s in intake_.publisher.producer.of(STATUS) if s["kind"] == "heartbeat"]
    assert len(beats) == 4  # t=1000, 1030, 1060, 1090
