"""Cooldown suppression, commit offsets with out-of-order deliveries, and the
dispatcher's per-sink pools."""

import threading
import time

from consumers.alerts.cooldown import Cooldown
from consumers.alerts.dispatch import Dispatcher, Job
from consumers.alerts.offsets import OffsetTracker
from consumers.alerts.sinks import Sink, SinkError


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_same_key_within_cooldown_is_suppressed_and_counted():
    clock = Clock()
    cd = Cooldown(clock, purge_every_s=5)
    assert cd.admit("r:o-1", 60) == (True, 0)
    clock.now += 59.9
    assert cd.admit("r:o-1", 60) == (False, 0)
    assert cd.admit("r:o-1", 60) == (False, 0)
    assert cd.admit("r:o-2", 60) == (True, 0)  # another key is independent
    clock.now += 0.2
    assert cd.admit("r:o-1", 60) == (True, 2)  # the window ended; two were suppressed in it
    assert cd.admit("r:o-1", 60) == (False, 0)


def test_zero_cooldown_never_suppresses_and_expired_keys_are_purged():
    clock = Clock()
    cd = Cooldown(clock, purge_every_s=5)
    assert all(cd.admit("k", 0)[0] for _ in range(3))
    for i in range(100):
        cd.admit(f"k{i}", 1)
    assert len(cd) == 100
    clock.now += 10
    cd.admit("new", 1)
    assert len(cd) == 1


def test_offsets_commit_only_past_fully_written_records():
    t = OffsetTracker()
    for offset in range(10, 15):
        t.consumed("in", 0, offset)
    t.add_output("in", 0, 11)
    t.add_output("in", 0, 11)
    t.add_output("in", 0, 13)
    assert [(tp.partition, tp.offset) for tp in t.committable()] == [(0, 11)]
    t.written("in", 0, 13)  # the later alert is written first
    assert t.committable()[0].offset == 11
    t.written("in", 0, 11)
    assert t.committable()[0].offset == 11 and t.pending() == 1
    t.written("in", 0, 11)
    [tp] = t.committable()
    assert tp.offset == 15 and t.pending() == 0
    t.committed([tp])
    assert t.committable() == []  # nothing new since the commit
    t.consumed("in", 1, 7)
    assert [(tp.partition, tp.offset) for tp in t.committable()] == [(1, 8)]
    t.add_output("in", 0, 15)
    t.consumed("in", 0, 15)
    t.forget({("in", 0)})
    t.written("in", 0, 15)  # an ack after a revoke is ignored
    assert t.pending() == 0 and [tp.partition for tp in t.committable()] == [1]


class SlowSink(Sink):
    type = "slow"

    def __init__(self, name, delay, fail=False):
        super().__init__(name, max_attempts=1, threads=2)
        self.delay, self.fail = delay, fail
        self.threads_seen = set()

    def send(self, alert):
        self.threads_seen.add(threading.current_thread().name)
        time.sleep(self.delay)
        if self.fail:
            raise SinkError("HTTP 500")


class InlineSink(Sink):
    blocking = False

    def send(self, alert):
        self.loop_thread = threading.current_thread().name


def test_dispatcher_runs_slow_sinks_off_the_calling_thread_and_reports_all_sinks():
    slow, broken, inline = SlowSink("slow", 0.2), SlowSink("broken", 0.01, fail=True), InlineSink("log", max_attempts=1)
    d = Dispatcher({"slow": slow, "broken": broken, "log": inline})
    started = time.monotonic()
    for i in range(4):
        d.submit(Job({"n": i}, ("log", "slow", "broken"), ("in", 0, i)))
    assert time.monotonic() - started < 0.15  # submit does not wait for the slow sink
    assert inline.loop_thread == threading.current_thread().name
    assert d.in_flight == 4
    done = []
    deadline = time.monotonic() + 5
    while len(done) < 4 and time.monotonic() < deadline:
        d.wait(0.1)
        done += d.completed()
    assert d.in_flight == 0
    assert sorted(j.record["n"] for j in done) == [0, 1, 2, 3]
    record = done[0].finished_record()
    assert [(x["sink"], x["status"]) for x in record["deliveries"]] == [("log", "delivered"), ("slow", "delivered"),
                                                                       ("broken", "failed")]
    assert all(name.startswith("alerts-sink-slow") for name in slow.threads_seen)
    d.close()
