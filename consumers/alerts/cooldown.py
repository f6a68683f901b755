"""Key-based suppression: an alert key that fired is silent for its rule's
cooldown. Keys are global strings (the default templates start with
{rule}, so rules do not suppress each other unless a template says so).

In memory only: a restart forgets open cooldowns (documented trade-off; the
alert topic keeps the history)."""

from __future__ import annotations

import time
from typing import Callable


class Cooldown:
    def __init__(self, clock: Callable[[], float] = time.monotonic, purge_every_s: float = 10.0):
        self._clock = clock
        self._until: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._purge_every_s = purge_every_s
        self._next_purge = clock() + purge_every_s

    def admit(self, key: str, cooldown_s: float) -> tuple[bool, int]:
        """(fire, suppressed_before): fire is False while the key cools down;
        suppressed_before counts the key's suppressions since it last fired."""
        now = self._clock()
        until = self._until.get(key)
        if until is not None and now < until:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False, 0
        suppressed = self._suppressed.pop(key, 0)
        if cooldown_s > 0:
            self._until[key] = now + cooldown_s
        else:
            self._until.pop(key, None)
        self._maybe_purge(now)
        return True, suppressed

    def _maybe_purge(self, now: float) -> None:
        # Expired keys are dropped so memory follows the keys still cooling down.
        if now < self._next_purge:
            return
        self._next_purge = now + self._purge_every_s
        expired = [k for k, until in self._until.items() if until <= now]
        for key in expired:
            del self._until[key]
            self._suppressed.pop(key, None)

    def __len__(self) -> int:
        return len(self._until)
