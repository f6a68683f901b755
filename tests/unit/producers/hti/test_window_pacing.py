"""The dedup window, the request budget, Retry-After and the reconnect backoff."""

import random
import threading
from datetime import datetime, timezone

import pytest

from producers.common.backoff import Backoff
from producers.hti.pacing import TokenBucket, retry_after_seconds
from producers.hti.window import SeenWindow


def test_window_drops_repeats_and_keeps_new_versions():
    window = SeenWindow(10)
    assert window.add(("A", "t1")) is True
    assert window.add(("A", "t1")) is False
    assert window.add(("A", "t2")) is True  # a new LAST_UPDATE is a new version
    assert ("A", "t1") in window and len(window) == 2


def test_window_is_bounded_and_refreshes_repeats():
    window = SeenWindow(3)
    for key in ["a", "b", "c"]:
        window.add((key, "t"))
    window.add(("a", "t"))  # a repeat moves "a" to the young end
    window.add(("d", "t"))  # evicts the oldest: "b"
    assert ("b", "t") not in window and ("a", "t") in window and len(window) == 3
    with pytest.raises(ValueError):
        SeenWindow(0)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_token_bucket_never_exceeds_the_limit_in_any_minute():
    clock = Clock()
    bucket = TokenBucket(60, clock=clock)
    granted = []
    while clock.now < 300:
        if bucket.try_acquire() == 0.0:
            granted.append(clock.now)
        else:
            clock.now += 0.05
    assert len(granted) > 4 * 60 * 0.8  # still uses most of the budget
    for i, t in enumerate(granted):  # any 60 s window holds at most the limit
        assert sum(1 for u in granted[i:] if u < t + 60) <= 60


def test_token_bucket_wait_time_and_reconfigure():
    clock = Clock()
    bucket = TokenBucket(12, clock=clock)  # capacity 2, refill 10 per minute
    assert bucket.capacity == 2
    assert bucket.try_acquire() == 0 and bucket.try_acquire() == 0
    assert bucket.try_acquire() == pytest.approx(6.0)
    clock.now = 6.0
    assert bucket.try_acquire() == 0
    bucket.configure(600)
    assert bucket.capacity == 100 and bucket.refill_per_s == pytest.approx(500 / 60)
    bucket.drain()
    assert bucket.try_acquire() > 0


def test_token_bucket_acquire_stops_on_stop_event():
    bucket = TokenBucket(1)
    stop = threading.Event()
    assert bucket.acquire(stop) is True
    stop.set()
    assert bucket.acquire(stop) is False


def test_retry_after():
    now = datetime(2026, 4, 22, 13, 0, 0, tzinfo=timezone.utc)
    assert retry_after_seconds("7", now) == 7.0
    assert retry_after_seconds(" 2.5 ", now) == 2.5
    assert retry_after_seconds("Wed, 22 Apr 2026 13:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Wed, 22 Apr 2026 12:00:00 GMT", now) == 0.0
    assert retry_after_seconds("99999", now) == 300.0
    assert retry_after_seconds("-3", now) == 0.0
    for value in (None, "", "soon", "nan"):
        assert retry_after_seconds(value, now) is None


def test_backoff_full_jitter_bounds_cap_and_reset():
    backoff = Backoff(0.5, 30.0, rng=random.Random(1))
    ceilings = []
    for _ in range(12):
        ceiling = backoff.ceiling()
        delay = backoff.next_delay()
        assert 0 <= delay <= ceiling
        ceilings.append(ceiling)
    assert ceilings[:7] == [0.5, 1, 2, 4, 8, 16, 30] and ceilings[-1] == 30
    backoff.reset()
    assert backoff.ceiling() == 0.5
    delays = [Backoff(0.5, 30.0, rng=random.Random(seed)).next_delay() for seed in range(200)]
    assert min(delays) < 0.05 and max(delays) > 0.45  # spread over [0, base]
