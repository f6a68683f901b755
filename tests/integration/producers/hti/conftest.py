"""Fixtures for the HTI producer against the real stack: the in-process HTI
simulator on a free port, the producer on a thread (or as a subprocess), and
a reader that decodes whole topics with a plain confluent-kafka
AvroDeserializer (registry URL only, none of our code)."""

from __future__ import annotations

import os
from collections import Counter
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from producers.hti.run import HtiProducer
from producers.hti.settings import HtiProducerSettings
from simulators.hti.config import SimConfig
from simulators.hti.profiles import unlimited_profile
from simulators.hti.simulator import HtiSimulator
from tests.integration.producers.threads import ProducerThread, producer_starter
from tradebus.config import Env
from tradebus.publishing import Publisher
from tradebus.topics import DLQ, HTI_IDEAS, STATUS, TopicNames

API_CODE = "it-code-4f7a2c9e81"
REPO = Path(__file__).resolve().parents[4]


def wait_until(condition, timeout=30.0, interval=0.1, message="condition", fail=True) -> bool:
    """Poll condition(); on timeout raise, or (fail=False) return False so the caller's asserts show the diff."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    if fail:
        raise AssertionError(f"timed out after {timeout}s waiting for {message}")
    return False


@pytest.fixture
def start_sim(tmp_path):
    """start_sim(**SimConfig fields) -> a started HtiSimulator with a ledger file; stopped at teardown."""
    sims: list[HtiSimulator] = []

    def start(**overrides) -> HtiSimulator:
        config = dict(profiles=[unlimited_profile(API_CODE, "IT")], port=0, rate=0.0, seed=11,
                      ledger_path=tmp_path / f"hti{len(sims)}.ledger.jsonl")
        config.update(overrides)
        sim = HtiSimulator(SimConfig(**config)).start()
        sims.append(sim)
        return sim

    yield start
    for sim in sims:
        sim.stop()


def hti_settings(sim: HtiSimulator, **env) -> HtiProducerSettings:
    return HtiProducerSettings.from_env(Env({
        "TRADEBUS_HTI_SERVER_URL": sim.base_url, "TRADEBUS_HTI_API_CODE": API_CODE, "TRADEBUS_HTI_POLL_SECONDS": "1",
        "TRADEBUS_HTI_BACKOFF_BASE_SECONDS": "0.1", "TRADEBUS_HTI_BACKOFF_CAP_SECONDS": "1",
        "TRADEBUS_HTI_HEARTBEAT_STATUS_SECONDS": "1", **env,
    }), shutdown_timeout_s=20)


class RunningProducer(ProducerThread):
    """HtiProducer(settings, publisher, stop).run() on a thread; stop() returns what it raised, if anything."""

    stop_timeout_s = 40.0

    def __init__(self, settings, common):
        super().__init__("hti-producer-under-test")
        self.publisher = Publisher(common, "hti", [HTI_IDEAS], stop=self.stop_event)
        self.acked: list[tuple[str, str]] = []  # (idea_id, LAST_UPDATE) acknowledged by Kafka, in ack order
        self.producer = HtiProducer(settings, self.publisher, self.stop_event,
                                    on_idea_ack=lambda idea_id, last_update, _r, _a: self.acked.append((idea_id, last_update)))

    def run(self):
        self.producer.run()


@pytest.fixture
def start_producer():
    yield from producer_starter(RunningProducer)


class TopicReader:
    """Reads every record of a topic from the beginning, decoded by a plain AvroDeserializer."""

    def __init__(self, common):
        self.common = common
        self.names = TopicNames(common.topic_prefix)
        self.deserializer = AvroDeserializer(SchemaRegistryClient({"url": common.kafka.schema_registry_url}))

    def read(self, topic, timeout: float = 10.0) -> list[tuple[bytes, dict, int]]:
        """[(key, value, partition)] in offset order per partition."""
        name = self.names(topic)
        consumer = Consumer({"bootstrap.servers": self.common.kafka.bootstrap_servers, "group.id": "hti-it-reader",
                             "enable.auto.commit": False, "isolation.level": "read_committed"})
        try:
            partitions = consumer.list_topics(name, timeout=timeout).topics[name].partitions
            assignments, remaining = [], {}
            for p in partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=timeout)
                if high > low:
                    assignments.append(TopicPartition(name, p, low))
                    remaining[p] = high
            records = []
            if not assignments:
                return records
            consumer.assign(assignments)
            deadline = time.monotonic() + timeout
            while remaining and time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None or msg.error():
                    continue
                value = self.deserializer(msg.value(), SerializationContext(name, MessageField.VALUE))
                records.append((msg.key(), value, msg.partition()))
                if msg.offset() + 1 >= remaining.get(msg.partition(), 0):
                    remaining.pop(msg.partition(), None)
            return records
        finally:
            consumer.close()

    def values(self, topic) -> list[dict]:
        return [value for _, value, _ in self.read(topic)]

    def statuses(self, kind=None) -> list[dict]:
        return [s for s in self.values(STATUS) if kind is None or s["kind"] == kind]

    def dead_letters(self) -> list[dict]:
        return self.values(DLQ)


@pytest.fixture
def reader(common, topics) -> TopicReader:
    return TopicReader(common)


def ledger_versions(sim: HtiSimulator) -> list[tuple[str, str]]:
    return [(e["idea_id"], e["LAST_UPDATE"]) for e in sim.ledger_entries() if e["kind"] == "idea"]


def latest_versions(sim: HtiSimulator) -> set[tuple[str, str]]:
    """What /history can return: the latest version of each idea."""
    latest = {}
    for idea_id, last_update in ledger_versions(sim):
        latest[idea_id] = (idea_id, last_update)
    return set(latest.values())


def assert_nothing_lost(sim: HtiSimulator, got: list[tuple[str, str]], outages: list[tuple[float, float]]) -> None:
    """Every ledger version is on the topic, once; except a version emitted while the
    stream was down (an outage: wall-clock start, end) and superseded by a later
    version of the same idea before the reconnect: /history returns only the latest
    version of each idea, so the API itself cannot deliver it again (spec §3, §9)."""
    duplicates = sorted(key for key, n in Counter(got).items() if n > 1)
    assert not duplicates, f"published twice: {duplicates[:5]}"
    on_topic = set(got)
    entries = [e for e in sim.ledger_entries() if e["kind"] == "idea"]
    assert on_topic <= {(e["idea_id"], e["LAST_UPDATE"]) for e in entries}, "versions the simulator never emitted"
    later_on_topic: dict[str, int] = {}
    unrecoverable = []
    for index in range(len(entries) - 1, -1, -1):
        entry = entries[index]
        key = (entry["idea_id"], entry["LAST_UPDATE"])
        if key not in on_topic:
            superseded = entry["idea_id"] in later_on_topic
            in_outage = any(start - 0.5 <= entry["emitted_at"] <= end for start, end in outages)
            assert superseded and in_outage, (
                f"version lost: {key} emitted at {entry['emitted_at']:.3f} (superseded={superseded}, outages={outages}, "
                f"versions of the idea: {[(e['LAST_UPDATE'], round(e['emitted_at'], 3)) for e in entries if e['idea_id'] == key[0]]})")
            unrecoverable.append(key)
        else:
            later_on_topic[entry["idea_id"]] = index
    assert len(unrecoverable) < len(entries) / 4, "suspiciously many superseded versions"


def idea_keys(values) -> list[tuple[str, str]]:
    return [(v["idea_id"], v["last_update_text"]) for v in values]


def subprocess_env(common, sim: HtiSimulator, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEBUS_")}
    env.update({
        "TRADEBUS_HTI_SERVER_URL": sim.base_url, "TRADEBUS_TOPIC_PREFIX": common.topic_prefix, "TRADEBUS_HTTP_PORT": "0",
        "TRADEBUS_INSTANCE_ID": "it-sub", "TRADEBUS_LOG_FORMAT": "json", "TRADEBUS_HTI_POLL_SECONDS": "1",
        "TRADEBUS_KAFKA_BOOTSTRAP_SERVERS": common.kafka.bootstrap_servers,
        "TRADEBUS_SCHEMA_REGISTRY_URL": common.kafka.schema_registry_url, "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


TRADEBUS = [sys.executable, "-m", "tradebus.cli"]
