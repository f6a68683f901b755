"""EventHandler with a recording publisher: routing, keys, replay flags
around primed markers, heartbeat throttling, status/error events, DLQ."""

from __future__ import annotations

import pytest

from producers.anthid.handler import EventHandler, ReplayTracker, primed_kinds
from tests.unit.producers.anthid import events
from tradebus.protos import pb
from tradebus.topics import BROKER_ORDERS, BROKER_POSITIONS, BROKER_TRADES, INTENT_ACTIONS


class RecordingPublisher:
    def __init__(self):
        self.published, self.statuses, self.dead = [], [], []

    def metadata(self, upstream_event, replay=False, received_at=None):
        return {"upstream_event": upstream_event, "replay": replay}

    def serialize(self, topic, record):
        if record.get("symbol") == "UNENCODABLE":
            raise ValueError("boom")
        return b"avro"

    def publish_bytes(self, topic, key, value, on_ack=None):
        self.published.append((topic, key, self._last))

    def status(self, kind, message=None, **kwargs):
        self.statuses.append((kind, message, kwargs))

    def dead_letter(self, **kwargs):
        self.dead.append(kwargs)


@pytest.fixture
def publisher(monkeypatch):
    publisher = RecordingPublisher()
    original = publisher.serialize

    def serialize(topic, record):
        publisher._last = record
        return original(topic, record)

    publisher.serialize = serialize
    return publisher


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def feed(handler, **member):
    raw = pb.TradingEvent(**member).SerializeToString()
    handler.handle(raw, pb.TradingEvent.FromString(raw))
    return raw


def test_data_goes_to_its_topic_with_its_key(publisher):
    handler = EventHandler(publisher, heartbeat_status_s=30)
    feed(handler, broker_order=events.order())
    feed(handler, broker_position=events.position())
    feed(handler, broker_trade=events.trade())
    feed(handler, intent_action=events.intent_action())
    assert [(t, k) for t, k, _ in publisher.published] == [
        (BROKER_ORDERS, "o-1"), (BROKER_POSITIONS, f"{events.ACCOUNT}|AAPL"),
        (BROKER_TRADES, f"{events.ACCOUNT}|b-1"), (INTENT_ACTIONS, "i-1"),
    ]
    assert [r["metadata"]["upstream_event"] for _, _, r in publisher.published] == [
        "broker_order", "broker_position", "broker_trade", "intent_action"]


def test_replay_flag_until_each_kinds_primed(publisher):
    handler = EventHandler(publisher, heartbeat_status_s=30)
    handler.replay.expect(primed_kinds(["EVENT_TYPE_BROKER_ORDER", "EVENT_TYPE_BROKER_POSITION",
                                        "EVENT_TYPE_BROKER_TRADE"], "PRIMED"))
    feed(handler, status=pb.Status(message="subscribed"))
    feed(handler, broker_position=events.position())
    feed(handler, primed=pb.Primed(event_type=pb.EVENT_TYPE_BROKER_POSITION))
    feed(handler, broker_order=events.order())
    feed(handler, broker_trade=events.trade())  # trades are never replayed
    feed(handler, primed=pb.Primed(event_type=pb.EVENT_TYPE_BROKER_ORDER))
    feed(handler, broker_position=events.position())
    feed(handler, broker_order=events.order())
    flags = [(t.name, r["metadata"]["replay"]) for t, _, r in publisher.published]
    assert flags == [
        ("anthid.broker-positions.v1", True), ("anthid.broker-orders.v1", True), ("anthid.broker-trades.v1", False),
        ("anthid.broker-positions.v1", False), ("anthid.broker-orders.v1", False),
    ]
    primed = [s for s in publisher.statuses if s[0] == "primed"]
    assert [s[2]["event_type"] for s in primed] == ["EVENT_TYPE_BROKER_POSITION", "EVENT_TYPE_BROKER_ORDER"]
    assert all(s[2]["payload"] for s in publisher.statuses)  # the upstream bytes ride along


def test_live_order_delivery_replays_only_positions():
    assert primed_kinds(["EVENT_TYPE_BROKER_ORDER", "EVENT_TYPE_BROKER_POSITION"], "LIVE") == {"EVENT_TYPE_BROKER_POSITION"}
    assert primed_kinds(["EVENT_TYPE_BROKER_TRADE", "EVENT_TYPE_INTENT_ACTION"], "PRIMED") == set()


def test_replay_tracker_two_scopes_and_a_rejected_one():
    tracker = ReplayTracker()
    for _ in range(3):  # three Subscribes on one call
        tracker.expect({"EVENT_TYPE_BROKER_POSITION"})
    tracker.accepted()
    tracker.rejected()  # the second one was refused: it will never send a primed
    tracker.accepted()
    tracker.primed("EVENT_TYPE_BROKER_POSITION")
    assert tracker.replaying("EVENT_TYPE_BROKER_POSITION")
    tracker.primed("EVENT_TYPE_BROKER_POSITION")
    assert not tracker.replaying("EVENT_TYPE_BROKER_POSITION")
    tracker.primed("EVENT_TYPE_BROKER_POSITION")  # a stray marker never goes negative
    tracker.expect({"EVENT_TYPE_BROKER_POSITION"})
    assert tracker.replaying("EVENT_TYPE_BROKER_POSITION")


def test_heartbeats_throttled_on_the_status_topic(publisher):
    clock = Clock()
    handler = EventHandler(publisher, heartbeat_status_s=30, clock=clock)
    for step in range(10):
        clock.now = 100.0 + step * 10  # a heartbeat every 10 s for 90 s
        feed(handler, heartbeat=pb.Heartbeat(sent_at=events.T_SENT))
    beats = [s for s in publisher.statuses if s[0] == "heartbeat"]
    assert len(beats) == 4  # t=100, 130, 160, 190
    assert beats[0][2]["upstream_time"].year == 2026


def test_upstream_error_is_a_status_not_fatal(publisher):
    handler = EventHandler(publisher, heartbeat_status_s=30)
    feed(handler, error=pb.Error(message="subscription rejected: no recognised event kinds"))
    feed(handler, broker_trade=events.trade())
    assert publisher.statuses[0][:2] == ("error", "subscription rejected: no recognised event kinds")
    assert len(publisher.published) == 1


def test_unconvertible_goes_to_the_dlq_with_the_event_bytes(publisher):
    handler = EventHandler(publisher, heartbeat_status_s=30)
    raw = feed(handler, broker_order=events.order(quantity="12..5"))
    feed(handler, broker_order=events.order(symbol="UNENCODABLE"))
    handler.handle(b"\xff\xff", None)  # undecodable
    empty = pb.TradingEvent().SerializeToString() + b"\xc8\x01\x01"  # only an unknown field 25
    handler.handle(empty, pb.TradingEvent.FromString(empty))
    assert publisher.published == []
    first, second, third, fourth = publisher.dead
    assert first["stage"] == "convert" and first["reason"] == "invalid_decimal" and first["payload"] == raw
    assert first["encoding"] == "protobuf" and first["upstream_event"] == "broker_order" and first["target_topic"] == BROKER_ORDERS
    assert second["stage"] == "serialize"
    assert (third["stage"], third["reason"], third["payload"]) == ("parse", "undecodable", b"\xff\xff")
    assert (fourth["stage"], fourth["reason"]) == ("parse", "unknown_event")
