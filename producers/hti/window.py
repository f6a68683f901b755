"""The bounded window of idea versions already published, keyed by
(idea_id, LAST_UPDATE text): the identity the docs recommend (spec §4.2).

It absorbs the overlap between history backfills and the stream. Oldest
entries are evicted first; a repeat refreshes its entry, so versions that keep
coming back (each backfill returns the same recent ideas) are never evicted
while newer ones still fit.
"""

from __future__ import annotations

from collections import OrderedDict


class SeenWindow:
    def __init__(self, size: int):
        if size < 1:
            raise ValueError("window size must be at least 1")
        self.size = size
        self._keys: OrderedDict[tuple[str, str], None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._keys

    def add(self, key: tuple[str, str]) -> bool:
        """Remember ``key``; True when it was new, False for a repeat."""
        if key in self._keys:
            self._keys.move_to_end(key)
            return False
        self._keys[key] = None
        if len(self._keys) > self.size:
            self._keys.popitem(last=False)
        return True
