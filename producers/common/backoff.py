"""Exponential backoff with full jitter, for reconnect loops.

Full jitter (a uniform draw between 0 and the exponential ceiling) spreads
the reconnects of many producer instances after an upstream outage instead
of having them all knock at the same moment.
"""

from __future__ import annotations

import random
import threading


class Backoff:
    """``next_delay()`` grows as initial * 2**attempt up to ``maximum``;
    ``reset()`` after a connection proved healthy."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0, *, rng: random.Random | None = None):
        if initial <= 0 or maximum < initial:
            raise ValueError("backoff needs 0 < initial <= maximum")
        self.initial = initial
        self.maximum = maximum
        self.attempt = 0
        self._rng = rng or random.Random()

    def ceiling(self) -> float:
        """The upper bound of the next draw."""
        # min() on the exponent too: 2**attempt must not overflow after days of outage
        return min(self.maximum, self.initial * 2 ** min(self.attempt, 62))

    def next_delay(self) -> float:
        delay = self._rng.uniform(0, self.ceiling())
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0

    def wait(self, stop: threading.Event) -> bool:
        """Sleep the next delay; True when ``stop`` was set meanwhile."""
        return stop.wait(self.next_delay())
