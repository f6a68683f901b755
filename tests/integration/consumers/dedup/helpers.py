"""Shared by the dedup and store integration tests: sample records with
distinct identities, publishing them, running a worker in a thread or as a
subprocess, and reading topics back with read_committed."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from tests import samples
from tradebus.config import CommonSettings
from tradebus.publishing import Publisher
from tradebus.serde import AvroRecordDeserializer, registry_client
from tradebus.topics import BROKER_ORDERS, BROKER_POSITIONS, BROKER_TRADES, DATA_TOPICS, HTI_IDEAS, INTENT_ACTIONS, TopicNames

REPO = Path(__file__).resolve().parents[4]


def distinct_records(i: int) -> list[tuple]:
    """Five records (one per data topic), each with an identity of its own for i."""
    idea = samples.hti_idea()
    idea.update(idea_id=f"idea-{i % 50}", last_update_text=f"2026-04-22 09:17:47 EST #{i}",
                last_update=samples.T0 + timedelta(seconds=i))
    order = samples.broker_order()
    order.update(order_id=f"o-{i % 40}", command_seq=i, received_at=samples.T0 + timedelta(microseconds=i))
    position = samples.broker_position()
    position.update(symbol=f"S{i % 30}", received_at=samples.T0 + timedelta(microseconds=i))
    trade = samples.broker_trade()
    if i % 2:
        trade.update(order_id=f"b-{i % 25}", exec_id=None, cumulative_quantity=str(i))
    else:
        trade.update(order_id=f"b-{i % 25}", exec_id=f"e-{i}")
    intent = samples.intent_action()
    intent.update(intent_id=f"i-{i % 20}", seq=i)
    return [
        (HTI_IDEAS, idea["idea_id"], idea),
        (BROKER_ORDERS, order["order_id"], order),
        (BROKER_POSITIONS, f"{position['account_id']}|{position['symbol']}", position),
        (BROKER_TRADES, f"{trade['account_id']}|{trade['order_id']}", trade),
        (INTENT_ACTIONS, intent["intent_id"], intent),
    ]


def as_duplicate(record: dict, copy: int) -> dict:
    """The same event received again: only the ingest metadata differs."""
    dup = dict(record)
    dup["metadata"] = {**record["metadata"], "producer_instance": f"test-dup-{copy}", "replay": True,
                       "received_at": record["metadata"]["received_at"] + timedelta(seconds=copy)}
    return dup


def publish(common: CommonSettings, items: list[tuple]) -> None:
    publisher = Publisher(common, "it", DATA_TOPICS)
    for topic, key, record in items:
        publisher.publish(topic, key, record)
    publisher.flush(30)


def read_topic(common: CommonSettings, topic: str, decode: bool = True, timeout: float = 30.0,
               isolation: str = "read_committed") -> list[dict]:
    """Every record a read_committed reader sees, to the end of each partition."""
    consumer = Consumer({**common.kafka.client_conf(), "group.id": f"it-reader-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "isolation.level": isolation})
    decoder = AvroRecordDeserializer(registry_client(common.kafka)) if decode else None
    try:
        parts = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        ends = {}
        for p in parts:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = high
        if not ends:
            return []
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        out = []
        deadline = time.monotonic() + timeout
        while ends and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.2):
                if msg.error():
                    continue
                out.append({"partition": msg.partition(), "offset": msg.offset(), "key": msg.key(),
                            "raw": msg.value(), "value": decoder(msg.value()) if decoder and msg.value() else None})
            for tp in consumer.position([TopicPartition(topic, p) for p in list(ends)]):
                if tp.offset >= ends[tp.partition]:
                    del ends[tp.partition]
        assert not ends, f"could not read {topic} to its end"
        return out
    finally:
        consumer.close()


def count_topics(common: CommonSettings, topics: list[str]) -> int:
    return sum(len(read_topic(common, t, decode=False)) for t in topics)


class ThreadedWorker:
    """Runs a BatchWorker in a thread; stop() sets its stop event and joins."""

    def __init__(self, worker):
        self.worker = worker
        self.result = None
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            self.result = self.worker.run()
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def __enter__(self):
        self.thread.start()
        return self

    def stop(self, timeout: float = 60.0):
        self.worker.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "worker did not stop"
        if self.error:
            raise self.error
        return self.result

    def __exit__(self, *exc):
        if self.thread.is_alive():
            self.stop()


def wait_until(predicate, timeout: float, interval: float = 0.5, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def start_cli(args: list[str], env: dict[str, str], log_path: Path, cwd: Path = REPO) -> subprocess.Popen:
    """`tradebus <args>` as a subprocess (its own stderr file, for post-mortems)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "TRADEBUS_LOG_FORMAT": "text", **env}
    log = open(log_path, "ab")
    return subprocess.Popen([sys.executable, "-m", "tradebus.cli", *args], cwd=cwd, env=full_env,
                            stdout=log, stderr=subprocess.STDOUT)


@contextlib.contextmanager
def log_on_failure(log_path: Path, chars: int = 4000):
    """Any assertion failing inside gets the tail of the worker's log attached."""
    try:
        yield
    except AssertionError as exc:
        tail = log_path.read_text(errors="replace")[-chars:] if log_path.exists() else "(no log)"
        raise AssertionError(f"{exc}\n--- worker log (tail) ---\n{tail}") from None


def identity_counts(records: list[dict], identity) -> Counter:
    return Counter(identity(r["value"]) for r in records)


def names(common: CommonSettings) -> TopicNames:
    return TopicNames(common.topic_prefix)


def committed_to_end(common, group: str, topics=DATA_TOPICS) -> bool:
    """Has the group committed every partition of ``topics`` (default: the data topics) up to its end?"""
    consumer = Consumer({**common.kafka.client_conf(), "group.id": group, "isolation.level": "read_committed"})
    try:
        for topic in topics:
            name = names(common)(topic)
            tps = [TopicPartition(name, p) for p in range(topic.partitions)]
            for tp in consumer.committed(tps, timeout=10):
                high = consumer.get_watermark_offsets(TopicPartition(name, tp.partition), timeout=10)[1]
                if high > 0 and tp.offset != high:
                    return False
        return True
    finally:
        consumer.close()
