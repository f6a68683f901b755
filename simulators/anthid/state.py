"""Retained state replayed on attach (spec §4.5).

Working orders and non-zero positions are kept until updated; terminal orders
(filled, cancelled, rejected, stopped) and flat positions expire
`retention_seconds` after their last update. There is no deletion event.
Not thread-safe: the owning channel holds its lock around every call.
"""

from __future__ import annotations

import time
from decimal import Decimal, InvalidOperation
from typing import Callable

from simulators.anthid.generator import TERMINAL_STATUSES


class RetainedState:
    def __init__(self, retention_seconds: float = 3600.0, clock: Callable[[], float] = time.monotonic):
        self.retention_seconds = retention_seconds
        self._clock = clock
        # key -> (Emission, expires_at or None)
        self._orders: dict[str, tuple[object, float | None]] = {}
        self._positions: dict[tuple[str, str], tuple[object, float | None]] = {}

    def apply(self, emission) -> None:
        """Remember the latest order/position Emission; other kinds are not retained."""
        event = emission.event
        which = event.WhichOneof("event")
        now = self._clock()
        if which == "broker_order":
            order = event.broker_order
            done = order.order_status in TERMINAL_STATUSES
            self._orders[order.order_id] = (emission, now + self.retention_seconds if done else None)
        elif which == "broker_position":
            position = event.broker_position
            flat = _is_zero(position.quantity)
            key = (position.account_id, position.symbol)
            self._positions[key] = (emission, now + self.retention_seconds if flat else None)

    def orders(self) -> list:
        """Retained order Emissions, oldest update first."""
        return self._live(self._orders)

    def positions(self) -> list:
        """Retained position Emissions, oldest update first."""
        return self._live(self._positions)

    def purge(self) -> None:
        """Drop expired entries (also done lazily by orders()/positions())."""
        self._purge(self._orders)
        self._purge(self._positions)

    def _purge(self, table: dict) -> None:
        now = self._clock()
        expired = [key for key, (_, expires) in table.items() if expires is not None and expires <= now]
        for key in expired:
            del table[key]

    def _live(self, table: dict) -> list:
        self._purge(table)
        return sorted((item for item, _ in table.values()), key=lambda e: e.received_at_ns)


def _is_zero(text: str) -> bool:
    try:
        return Decimal(text) == 0
    except InvalidOperation:
        return False
