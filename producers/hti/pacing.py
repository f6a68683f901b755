"""How fast the producer may talk to the HTI API: the client-side request
budget and Retry-After. (Reconnect backoff: producers.common.backoff.)"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Callable


class TokenBucket:
    """Client-side request budget derived from the profile's
    ``request_limit_per_minute``.

    The server's window type is not documented (spec §6, O10), so the bucket
    is sized to stay within the limit under any window: capacity c and a
    refill of (limit - c) per minute admit at most c + (limit - c) = limit
    requests in any 60-second interval, fixed or sliding.
    """

    def __init__(self, limit_per_minute: int = 60, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self.configure(limit_per_minute)
        self._tokens = float(self.capacity)
        self._updated = clock()

    def configure(self, limit_per_minute: int) -> None:
        limit = max(1, int(limit_per_minute))
        with self._lock:
            self.limit_per_minute = limit
            self.capacity = max(1, limit // 6)
            self.refill_per_s = max(1, limit - self.capacity) / 60.0
            if hasattr(self, "_tokens"):
                self._tokens = min(self._tokens, float(self.capacity))

    def _refill(self, now: float) -> None:
        self._tokens = min(float(self.capacity), self._tokens + (now - self._updated) * self.refill_per_s)
        self._updated = now

    def try_acquire(self) -> float:
        """Take a token and return 0, or return the seconds until one is available."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / self.refill_per_s

    def acquire(self, stop: threading.Event) -> bool:
        """Wait for a token; False when ``stop`` was set first."""
        while True:
            wait = self.try_acquire()
            if wait == 0.0:
                return True
            if stop.wait(min(wait, 1.0)):
                return False

    def drain(self) -> None:
        """After a 429 the server's budget is spent whatever ours says."""
        with self._lock:
            self._refill(self._clock())
            self._tokens = 0.0


def retry_after_seconds(value: str | None, now: datetime | None = None, limit_s: float = 300.0) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), bounded; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), limit_s)
