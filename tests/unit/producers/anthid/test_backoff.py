"""producers.common.backoff: exponential ceiling, full jitter, reset, stop."""

import random
import threading
import time

import pytest

from producers.common.backoff import Backoff


def test_ceiling_doubles_up_to_the_maximum():
    backoff = Backoff(0.5, 4.0, rng=random.Random(1))
    ceilings = []
    for _ in range(6):
        ceilings.append(backoff.ceiling())
        backoff.next_delay()
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_full_jitter_draws_between_zero_and_the_ceiling():
    backoff = Backoff(1.0, 8.0, rng=random.Random(7))
    draws = []
    for _ in range(200):
        backoff.attempt = 3  # ceiling 8
        draws.append(backoff.next_delay())
    assert all(0 <= d <= 8.0 for d in draws)
    assert min(draws) < 1.0 and max(draws) > 7.0  # spread over the whole range, not clustered at the top


def test_reset_starts_over_and_huge_attempts_do_not_overflow():
    backoff = Backoff(0.5, 30.0)
    backoff.attempt = 10_000
    assert backoff.ceiling() == 30.0
    backoff.reset()
    assert backoff.ceiling() == 0.5


def test_wait_returns_early_on_stop():
    backoff = Backoff(10.0, 10.0, rng=random.Random(0))
    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()
    started = time.monotonic()
    assert backoff.wait(stop) is True
    assert time.monotonic() - started < 2


def test_invalid_bounds():
    with pytest.raises(ValueError):
        Backoff(0, 1)
    with pytest.raises(ValueError):
        Backoff(2, 1)
