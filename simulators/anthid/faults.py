"""Fault switches, set from the command line or at run time by tests."""

from __future__ import annotations

import time
from typing import Callable


class FaultSwitches:
    """`end_stream_after`: end each stream (OK status) after N data events.
    stall: no heartbeats, no events, no generation, but streams stay open.
    unavailable: new calls are answered UNAVAILABLE; open streams continue."""

    def __init__(self, *, end_stream_after: int = 0, stall_after: float | None = None,
                 unavailable_for: float = 0.0, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self.end_stream_after = end_stream_after
        self._stall_after = stall_after
        self._unavailable_for = unavailable_for
        self.restart()

    def restart(self) -> None:
        """Start the timed faults' clocks now (called when the server starts)."""
        now = self._clock()
        self._stall_at = None if self._stall_after is None else now + self._stall_after
        self._stall_override: bool | None = None
        self._unavailable_until = now + self._unavailable_for

    def stalled(self) -> bool:
        if self._stall_override is not None:
            return self._stall_override
        return self._stall_at is not None and self._clock() >= self._stall_at

    def set_stall(self, on: bool) -> None:
        self._stall_override = bool(on)

    def unavailable(self) -> bool:
        return self._clock() < self._unavailable_until

    def set_unavailable(self, seconds: float) -> None:
        self._unavailable_until = self._clock() + seconds
