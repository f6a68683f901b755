"""Fault switches that can be flipped while the simulator runs."""

from __future__ import annotations

import math
import threading
import time


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._outage_until = 0.0
        self._throttle_until = 0.0
        self.stalled = False  # streams send nothing while set

    def fail_5xx(self, seconds: float) -> None:
        """Answer 503 on every endpoint for ``seconds`` from now (0 ends it)."""
        with self._lock:
            self._outage_until = time.monotonic() + max(0.0, seconds)

    def fail_429(self, seconds: float) -> None:
        """Answer 429 on every endpoint for ``seconds`` from now (0 ends it)."""
        with self._lock:
            self._throttle_until = time.monotonic() + max(0.0, seconds)

    def in_outage(self) -> bool:
        return time.monotonic() < self._outage_until

    def throttle_remaining(self) -> int | None:
        """Whole seconds left of an injected 429 period, or None."""
        left = self._throttle_until - time.monotonic()
        return max(1, math.ceil(left)) if left > 0 else None
