"""The shared consumer loop, against a scripted fake consumer: batching by
size and age, stop -> finish the batch and commit, revoke -> commit first,
lost -> discard, failure -> no commit, lag gauge."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import TopicPartition

import consumers.common.worker as worker_module
from consumers.common import BatchWorker, WorkerSettings, first_offsets, next_offsets
from tradebus import metrics
from tests.unit.consumers.fakes import FakeMessage
from tradebus.config import CommonSettings, Env


class FakeConsumer:
    """Plays a script: messages, or callables run inside poll()/consume() (like rebalance callbacks)."""

    script: list = []
    instance: "FakeConsumer | None" = None

    def __init__(self, conf):
        self.conf = conf
        self.commits: list[list[TopicPartition]] = []
        self.closed = False
        self.assigned: list[TopicPartition] = []
        self.positions: dict[tuple[str, int], int] = {}
        self.high: dict[tuple[str, int], int] = {}
        self.waits: list[tuple[str, float]] = []  # (call, timeout) of every poll/consume
        FakeConsumer.instance = self

    def subscribe(self, topics, on_assign, on_revoke, on_lost):
        self.topics, self.on_assign, self.on_revoke, self.on_lost = topics, on_assign, on_revoke, on_lost

    def poll(self, timeout):
        self.waits.append(("poll", timeout))
        out = self._take(1, timeout)
        return out[0] if out else None

    def consume(self, num, timeout):
        self.waits.append(("consume", timeout))
        return self._take(num, timeout)

    def _take(self, num, timeout):
        out = []
        while FakeConsumer.script and len(out) < num:
            item = FakeConsumer.script[0]
            if callable(item):
                if out:
                    break  # deliver what we have first, like a poll boundary
                FakeConsumer.script.pop(0)
                item(self)
                break  # one callable per call: a script step may re-queue itself
            out.append(FakeConsumer.script.pop(0))
        if not out:
            time.sleep(min(timeout, 0.005))
        return out

    def commit(self, offsets, asynchronous=True):
        assert asynchronous is False
        self.commits.append(offsets)

    def close(self):
        if self.assigned:
            self.on_revoke(self, self.assigned)
        self.closed = True

    def assignment(self):
        return list(self.assigned)

    def position(self, tps):
        return [TopicPartition(tp.topic, tp.partition, self.positions.get((tp.topic, tp.partition), -1001)) for tp in tps]

    def get_watermark_offsets(self, tp, timeout=None, cached=False):
        return (0, self.high.get((tp.topic, tp.partition), 0))

    def list_topics(self, timeout=None):
        return None


class Recorder(BatchWorker):
    def __init__(self, *args, fail=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches, self.events, self.fail = [], [], fail

    def process(self, batch):
        if self.fail:
            raise RuntimeError("boom")
        self.batches.append([m.offset() for m in batch])
        self.events.append(("process", len(batch)))
        self.commit_offsets(batch)

    def discard(self, batch):
        self.events.append(("discard", len(batch)))

    def on_revoked(self, partitions):
        self.events.append(("revoked", len(partitions)))

    def teardown(self):
        self.events.append(("teardown",))


@pytest.fixture(autouse=True)
def fake_consumer(monkeypatch):
    monkeypatch.setattr(worker_module, "Consumer", FakeConsumer)
    FakeConsumer.script = []
    yield


def make(batch_size=10, flush_ms=30, **kwargs):
    common = CommonSettings.from_env(Env({"TRADEBUS_HTTP_PORT": "0", "TRADEBUS_INSTANCE_ID": "unit"}))
    settings = WorkerSettings.from_env(Env({"TRADEBUS_UNIT_BATCH_SIZE": str(batch_size),
                                            "TRADEBUS_UNIT_FLUSH_MS": str(flush_ms)}), "unit", batch_size=1, flush_ms=1)
    return Recorder(common, settings, ["t"], **kwargs)


def stop_when_idle(worker):
    def stop(_consumer):
        worker.stop.set()
    return stop


def msgs(n, start=0, partition=0):
    return [FakeMessage("t", partition, start + i) for i in range(n)]


def test_batches_by_size_then_by_age_and_commits_explicit_offsets():
    w = make(batch_size=10, flush_ms=30)
    FakeConsumer.script = [*msgs(25), lambda c: time.sleep(0.1), stop_when_idle(w)]
    assert w.run() == 0
    assert [len(b) for b in w.batches] == [10, 10, 5]
    commits = FakeConsumer.instance.commits
    assert [[(tp.topic, tp.partition, tp.offset) for tp in c] for c in commits] == [[("t", 0, 10)], [("t", 0, 20)], [("t", 0, 25)]]
    assert FakeConsumer.instance.conf["enable.auto.commit"] is False
    assert FakeConsumer.instance.conf["group.id"] == "tradebus-unit"


def test_never_waits_once_a_record_is_in_hand():
    """A lone record is handed over flush_ms after it arrived, not after a
    wait for the rest of the batch; once a record is in hand, the rest of the
    turn only takes what is already fetched."""
    w = make(batch_size=100, flush_ms=30)
    arrived = []

    def mark(_consumer):
        arrived.append(time.monotonic())

    handed = []
    w.process = lambda batch: (handed.append(time.monotonic()), w.commit_offsets(batch))

    def idle_until_handed(_consumer):  # no more traffic: the batch is due by age only
        if handed:
            w.stop.set()
        else:
            FakeConsumer.script.insert(0, idle_until_handed)
            time.sleep(0.002)

    FakeConsumer.script = [mark, *msgs(1), idle_until_handed]
    assert w.run() == 0
    assert len(handed) == 1 and 0.025 <= handed[0] - arrived[0] < 0.15
    waits = FakeConsumer.instance.waits
    assert all(timeout == 0 for call, timeout in waits if call == "consume")
    assert all(timeout <= worker_module.MAX_POLL_S for call, timeout in waits)


def test_the_first_record_is_committed_when_a_revoke_comes_right_after_it():
    w = make(batch_size=1000, flush_ms=60_000)

    def revoke(consumer):
        consumer.on_revoke(consumer, [TopicPartition("t", 0)])

    FakeConsumer.script = [*msgs(1), revoke, stop_when_idle(w)]
    assert w.run() == 0
    assert w.events[:2] == [("process", 1), ("revoked", 1)]


def test_stop_finishes_and_commits_the_current_batch_then_closes():
    w = make(batch_size=1000, flush_ms=60_000)  # the batch would never be complete on its own
    FakeConsumer.script = [*msgs(3), stop_when_idle(w)]
    assert w.run() == 0
    assert w.batches == [[0, 1, 2]] and len(FakeConsumer.instance.commits) == 1
    assert FakeConsumer.instance.closed and w.events[-1] == ("teardown",)


def test_revoke_commits_the_pending_batch_before_the_partitions_go():
    w = make(batch_size=1000, flush_ms=60_000)

    def revoke(consumer):
        consumer.on_revoke(consumer, [TopicPartition("t", 0)])

    FakeConsumer.script = [*msgs(4), revoke, stop_when_idle(w)]
    assert w.run() == 0
    assert w.events[:2] == [("process", 4), ("revoked", 1)]


def test_lost_partitions_discard_the_pending_batch_without_commit():
    w = make(batch_size=1000, flush_ms=60_000)

    def lose(consumer):
        consumer.on_lost(consumer, [TopicPartition("t", 0)])

    FakeConsumer.script = [*msgs(4), lose, stop_when_idle(w)]
    assert w.run() == 0
    assert w.events[0] == ("discard", 4) and FakeConsumer.instance.commits == []


def test_a_failing_batch_is_never_committed():
    w = make(batch_size=2, fail=True)
    FakeConsumer.script = msgs(2)
    with pytest.raises(RuntimeError, match="boom"):
        w.run()
    assert FakeConsumer.instance.commits == [] and FakeConsumer.instance.closed
    assert w.events == [("teardown",)]


def test_lag_gauge_is_high_watermark_minus_position_per_topic():
    w = make()

    def assign(consumer):
        consumer.assigned = [TopicPartition("t", 0), TopicPartition("t", 1)]
        consumer.positions = {("t", 0): 7, ("t", 1): -1001}  # partition 1: nothing consumed yet (low = 0)
        consumer.high = {("t", 0): 10, ("t", 1): 5}
        w.refresh_lag()
        w.stop.set()

    FakeConsumer.script = [assign]
    assert w.run() == 0
    assert metrics.CONSUMER_LAG.labels(group="tradebus-unit", topic="t")._value.get() == 3 + 5
    assert w.kafka_ok


def test_offset_helpers():
    batch = [FakeMessage("a", 0, 5), FakeMessage("a", 1, 9), FakeMessage("a", 0, 7), FakeMessage("b", 0, 1)]
    assert sorted((tp.topic, tp.partition, tp.offset) for tp in next_offsets(batch)) == [("a", 0, 8), ("a", 1, 10), ("b", 0, 2)]
    assert sorted((tp.topic, tp.partition, tp.offset) for tp in first_offsets(batch)) == [("a", 0, 5), ("a", 1, 9), ("b", 0, 1)]
