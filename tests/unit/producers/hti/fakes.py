"""A real Publisher over an in-memory producer (no Kafka, no registry), the
in-process HTI simulator, and a runner for the producer on a thread."""

from __future__ import annotations

import io
import threading
import time
from contextlib import contextmanager

import fastavro

from producers.hti.run import HtiProducer
from producers.hti.settings import HtiProducerSettings
from simulators.hti.config import SimConfig
from simulators.hti.profiles import unlimited_profile
from simulators.hti.simulator import HtiSimulator
from tradebus.publishing import Publisher
from tradebus.serde import AvroRecordSerializer, parsed_schema
from tradebus.topics import DLQ, HTI_IDEAS, STATUS, TopicNames

CODE = "unit-code-7d1f0a9b"
SCHEMAS = {HTI_IDEAS.name: HTI_IDEAS.value_schema, STATUS.name: STATUS.value_schema, DLQ.name: DLQ.value_schema}


class FakeMsg:
    def __init__(self, topic):
        self._topic = topic

    def topic(self):
        return self._topic


class MemoryProducer:
    """Acks every record at once; keeps them decoded per topic."""

    def __init__(self):
        self.records: dict[str, list[tuple[str, dict]]] = {name: [] for name in SCHEMAS}
        self.lock = threading.Lock()
        self.acked = 0
        self.failed = 0

    def produce(self, topic, key, value, on_ack=None, headers=None):
        record = fastavro.schemaless_reader(io.BytesIO(value[5:]), parsed_schema(SCHEMAS[topic]), None)
        with self.lock:
            self.records[topic].append((key.decode(), record))
            self.acked += 1
        if on_ack is not None:
            on_ack(None, FakeMsg(topic))

    def poll(self, timeout=0):
        time.sleep(timeout)
        return 0

    def flush(self, timeout):
        pass

    def pending(self):
        return 0

    def kafka_reachable(self, timeout=2.0):
        return True

    def of(self, topic) -> list[dict]:
        with self.lock:
            return [record for _, record in self.records[topic.name]]


def memory_publisher() -> Publisher:
    publisher = Publisher.__new__(Publisher)
    publisher.source = "hti"
    publisher.instance = "unit"
    publisher.names = TopicNames("")
    publisher.producer = MemoryProducer()
    publisher._serializers = {name: AvroRecordSerializer(1, schema) for name, schema in SCHEMAS.items()}
    publisher._status_key = "hti/unit"
    return publisher


def wait_until(condition, timeout=20.0, interval=0.05, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def simulator(**config) -> HtiSimulator:
    profiles = config.pop("profiles", None) or [unlimited_profile(CODE, "UNIT")]
    return HtiSimulator(SimConfig(profiles=profiles, port=0, rate=config.pop("rate", 0), seed=config.pop("seed", 7),
                                  **config)).start()


def producer_settings(sim: HtiSimulator, **overrides) -> HtiProducerSettings:
    values = dict(server_url=sim.base_url, api_code=CODE, poll_seconds=1.0, backoff_base_s=0.05, backoff_cap_s=0.5,
                  heartbeat_status_s=1.0, shutdown_timeout_s=5.0)
    values.update(overrides)
    return HtiProducerSettings(**values)


class RunningProducer:
    def __init__(self, producer: HtiProducer, thread: threading.Thread):
        self.producer = producer
        self.thread = thread
        self.error: BaseException | None = None


@contextmanager
def running(settings: HtiProducerSettings, publisher=None, **kwargs):
    """Run HtiProducer(settings, publisher, stop).run() on a thread; stop and join on exit."""
    publisher = publisher or memory_publisher()
    stop = threading.Event()
    producer = HtiProducer(settings, publisher, stop, **kwargs)
    holder: dict = {}

    def target():
        try:
            producer.run()
        except BaseException as exc:  # surfaced to the test
            holder["error"] = exc

    thread = threading.Thread(target=target, name="hti-producer-under-test", daemon=True)
    runner = RunningProducer(producer, thread)
    thread.start()
    try:
        yield runner
    finally:
        stop.set()
        thread.join(15)
        assert not thread.is_alive(), "producer did not stop within 15 s"
        runner.error = holder.get("error")


def ledger_ideas(sim: HtiSimulator) -> list[tuple[str, str]]:
    return [(e["idea_id"], e["LAST_UPDATE"]) for e in sim.ledger_entries() if e["kind"] == "idea"]


def keys(records) -> list[tuple[str, str]]:
    return [(r["idea_id"], r["last_update_text"]) for r in records]
