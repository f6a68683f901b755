"""Fixtures for the Anthid producer against the real stack and the in-process
simulator: a simulator on a free port with a ledger, the producer running
in a thread with a stop event, and a reader of whole topics."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from producers.anthid import wire
from producers.anthid.convert import DATA_KINDS
from producers.anthid.run import run
from producers.anthid.settings import AnthidProducerSettings
from simulators.anthid.ledger import read_ledger
from simulators.anthid.server import AnthidSimulator, SimConfig
from tests.integration.producers.threads import ProducerThread, producer_starter
from tradebus.config import Env
from tradebus.serde import AvroRecordDeserializer, registry_client
from tradebus.topics import TopicNames

API_KEY = "local-dev-key"
REPO = Path(__file__).resolve().parents[4]


@pytest.fixture
def start_sim(tmp_path):
    """start_sim(**SimConfig fields) -> a started simulator, stopped at teardown."""
    sims: list[AnthidSimulator] = []

    def start(**overrides) -> AnthidSimulator:
        config = dict(port=0, heartbeat_seconds=0.2, rate=40.0, seed=7, ledger_path=str(tmp_path / f"sim{len(sims)}.ledger.jsonl"))
        config.update(overrides)
        sim = AnthidSimulator(SimConfig(**config)).start()
        sims.append(sim)
        return sim

    yield start
    for sim in sims:
        sim.stop(grace=0.2)


def producer_settings(target: str, **env) -> AnthidProducerSettings:
    return AnthidProducerSettings.from_env(Env({
        "TRADEBUS_ANTHID_API_KEY": API_KEY, "TRADEBUS_ANTHID_TARGET": target, "TRADEBUS_ANTHID_TLS": "false",
        "TRADEBUS_ANTHID_HEARTBEAT_TIMEOUT_SECONDS": "2", "TRADEBUS_ANTHID_HEARTBEAT_STATUS_SECONDS": "1",
        "TRADEBUS_ANTHID_BACKOFF_INITIAL_SECONDS": "0.1", "TRADEBUS_ANTHID_BACKOFF_MAX_SECONDS": "0.5", **env,
    }))


class RunningProducer(ProducerThread):
    """producers.anthid.run.run(settings, common, stop) on a thread; stop() returns its exit code."""

    def __init__(self, settings, common):
        super().__init__("producer-under-test")
        self.settings, self.common = settings, common

    def run(self):
        return run(self.settings, self.common, stop=self.stop_event)


@pytest.fixture
def start_producer():
    yield from producer_starter(RunningProducer)


class TopicReader:
    """Every record of a topic, decoded, from the beginning."""

    def __init__(self, common):
        self.common = common
        self.names = TopicNames(common.topic_prefix)
        self.deserializer = AvroRecordDeserializer(registry_client(common.kafka))

    def read(self, topic, *, expect_at_least: int = 0, timeout: float = 20.0) -> list[tuple[bytes, dict]]:
        name = self.names(topic)
        consumer = Consumer({"bootstrap.servers": self.common.kafka.bootstrap_servers, "group.id": f"it-{uuid.uuid4()}",
                             "enable.auto.commit": False, "isolation.level": "read_committed"})
        try:
            partitions = consumer.list_topics(name, timeout=10).topics[name].partitions
            ends = {}
            for p in partitions:
                ends[p] = _high_watermark(consumer, TopicPartition(name, p))
            consumer.assign([TopicPartition(name, p, OFFSET_BEGINNING) for p in partitions])
            records, done = [], {p for p, high in ends.items() if high == 0}
            deadline = time.monotonic() + timeout
            while len(done) < len(ends) and time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None or msg.error():
                    continue
                records.append((msg.key(), self.deserializer(msg.value())))
                if msg.offset() + 1 >= ends[msg.partition()]:
                    done.add(msg.partition())
            assert len(done) == len(ends), f"could not read {name} to its end in {timeout}s"
            assert len(records) >= expect_at_least, f"{name}: {len(records)} records, expected >= {expect_at_least}"
            return records
        finally:
            consumer.close()

    def values(self, topic, **kwargs) -> list[dict]:
        return [value for _, value in self.read(topic, **kwargs)]


def _high_watermark(consumer, partition, attempts: int = 20) -> int:
    """Retried: right after topic creation a partition may still be electing its leader."""
    for attempt in range(attempts):
        try:
            return consumer.get_watermark_offsets(partition, timeout=10)[1]
        except KafkaException:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


@pytest.fixture
def reader(common, topics) -> TopicReader:
    return TopicReader(common)


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def ledger_data(sim: AnthidSimulator) -> list[dict]:
    """Ledger lines of data events, each with the member bytes it carried."""
    entries = []
    for line in read_ledger(sim.config.ledger_path):
        raw = base64.b64decode(line["payload_b64"])
        line["member_bytes"] = wire.field_bytes(raw, DATA_KINDS[line["kind"]].field_number)
        line["event_bytes"] = raw
        entries.append(line)
    return entries


def quiesce(sim: AnthidSimulator, producer_common_wait: float = 1.5) -> None:
    """Stop the simulator's output (no generation, no sending) and give what
    is already on the wire time to arrive."""
    sim.set_stall(True)
    time.sleep(producer_common_wait)


def tradebus_subprocess(args: list[str], env: dict, **kwargs) -> subprocess.Popen:
    full_env = {**os.environ, **env}
    return subprocess.Popen([sys.executable, "-m", "tradebus.cli", *args], cwd=REPO, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
