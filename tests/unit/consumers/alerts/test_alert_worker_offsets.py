"""The worker's bookkeeping without Kafka: an offset is committed only after
the alerts it fired were delivered (or failed for good) and acknowledged by
Kafka; a poison record goes to the DLQ and its partition moves on; a
transient registry error commits nothing past the record."""

import threading
import time

import pytest
from confluent_kafka.schema_registry.error import SchemaRegistryError

from consumers.alerts.dispatch import Dispatcher
from consumers.alerts.rules import parse_rules
from consumers.alerts.sinks import Sink
from consumers.alerts.worker import AlertsOptions, AlertsWorker
from consumers.common import WorkerSettings
from tests import samples
from tests.unit.consumers.fakes import FakeMessage
from tradebus.config import CommonSettings, Env

TRADES = "p.anthid.broker-trades.unique.v1"


def Msg(offset, value, partition=0, topic=TRADES):  # noqa: N802 (reads like the class it stands for)
    return FakeMessage(topic, partition, offset, value, key=b"a-1|b-1")


class FakeProducer:
    def __init__(self):
        self.queued, self.records, self.hold = [], [], False

    def produce(self, topic, key, value, on_ack=None):
        self.queued.append((topic, key, value, on_ack))

    def poll(self, timeout=0):
        if self.hold:
            return 0
        served, self.queued = self.queued, []
        for topic, key, value, on_ack in served:
            self.records.append((topic, value))
            on_ack(None, type("M", (), {"topic": lambda self, t=topic: t})())
        return len(served)

    def flush(self, timeout):
        self.poll()


class FakeConsumer:
    def __init__(self):
        self.commits = []

    def commit(self, offsets, asynchronous):
        self.commits.append({(tp.topic, tp.partition): tp.offset for tp in offsets})


class GateSink(Sink):
    def __init__(self):
        super().__init__("hook", max_attempts=1, threads=1)
        self.gate = threading.Event()

    def send(self, alert):
        self.gate.wait(5)


class Poison(Exception):
    pass


def worker(decode=None):
    ruleset = parse_rules("""
        sinks: {hook: {type: webhook}}
        rules:
          - {name: big, kind: large_fill, min_notional: 1000, cooldown_seconds: 0, sinks: [hook]}
        """, "t.yaml")
    common = CommonSettings.from_env(Env({"TRADEBUS_TOPIC_PREFIX": "p.", "TRADEBUS_HTTP_PORT": "0",
                                          "TRADEBUS_SHUTDOWN_TIMEOUT_SECONDS": "2"}))
    sink = GateSink()
    w = AlertsWorker(common, WorkerSettings("alerts", "g", 1, 5), AlertsOptions(commit_s=0.05), ruleset, {"hook": sink})
    w.producer, w.consumer, w.dispatcher = FakeProducer(), FakeConsumer(), Dispatcher({"hook": sink})
    w.serialize_alert = lambda record: record
    w.deserializers = {TRADES: decode or (lambda value: value)}
    w.dead_letters = type("DL", (), {"topic": "p.tradebus.dlq.v1", "key": b"alerts/it",
                                     "encode": lambda self, msg, **kw: {"dead": msg.offset(), **kw}})()
    return w, sink


def trade(quantity):
    return {**samples.broker_trade(), "quantity": quantity, "metadata": {**samples.metadata("anthid"), "replay": False}}


def settle(w, until):
    deadline = time.monotonic() + 5
    while not until() and time.monotonic() < deadline:
        time.sleep(0.06)
        w.tick()
    assert until()


def test_offsets_wait_for_delivery_and_the_kafka_ack():
    w, sink = worker()
    w.process([Msg(5, trade("100"))])  # notional 12344: fires
    w.process([Msg(6, trade("1"))])  # does not fire
    time.sleep(0.06)
    w.tick()
    assert w.consumer.commits == [{(TRADES, 0): 5}]  # nothing past the alert still being delivered
    w.producer.hold = True
    sink.gate.set()
    settle(w, lambda: w.producer.queued)  # delivered, written, not yet acknowledged
    assert w.consumer.commits[-1] == {(TRADES, 0): 5}
    w.producer.hold = False
    settle(w, lambda: w.consumer.commits[-1] == {(TRADES, 0): 7})
    [(topic, alert)] = w.producer.records
    assert topic == "p.tradebus.alerts.v1" and alert["deliveries"][0]["status"] == "delivered"


def test_poison_goes_to_the_dlq_and_the_partition_moves_on():
    def decode(value):
        if value == b"junk":
            raise Poison("not avro")
        return value

    w, sink = worker(decode)
    sink.gate.set()
    w.process([Msg(1, b"junk"), Msg(2, trade("1"))])
    settle(w, lambda: w.consumer.commits and w.consumer.commits[-1] == {(TRADES, 0): 3})
    [(topic, dead)] = w.producer.records
    assert topic == "p.tradebus.dlq.v1" and dead["dead"] == 1 and dead["reason"] == "undecodable"


def test_a_transient_registry_error_commits_nothing_past_the_record():
    def decode(value):
        if value == b"later":
            raise SchemaRegistryError(503, 50301, "unavailable")
        return value

    w, sink = worker(decode)
    with pytest.raises(SchemaRegistryError):
        w.process([Msg(10, trade("1")), Msg(11, b"later"), Msg(12, trade("1"))])
    time.sleep(0.06)
    w.tick()
    assert w.consumer.commits == [{(TRADES, 0): 11}]  # 11 is consumed again after the restart


def test_revoke_waits_for_in_flight_alerts_then_commits():
    w, sink = worker()
    w.process([Msg(3, trade("100"), partition=2)])
    threading.Timer(0.2, sink.gate.set).start()
    from confluent_kafka import TopicPartition

    w.on_revoked([TopicPartition(TRADES, 2)])
    assert w.consumer.commits[-1] == {(TRADES, 2): 4}
    assert w.tracker.committable() == []
