"""Per-code request budget: a fixed 60-second window (spec §6, O10).

Assumption (not documented): the window opens with the first request of a
code and lasts 60 s; every /auth, /history and stream connect that passes
authentication counts; rejected requests do not. ``check`` returns the
seconds until the window resets when the budget is spent.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Callable


class FixedWindowLimiter:
    def __init__(self, window_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.window_seconds = window_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (window start, requests counted)

    def check(self, key: str, limit: int) -> int | None:
        """Count one request; None when allowed, else whole seconds to wait (>= 1)."""
        now = self._clock()
        with self._lock:
            start, count = self._windows.get(key, (now, 0))
            if now - start >= self.window_seconds:
                start, count = now, 0
            if count >= limit:
                self._windows[key] = (start, count)
                return max(1, math.ceil(start + self.window_seconds - now))
            self._windows[key] = (start, count + 1)
            return None
