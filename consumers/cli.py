"""`tradebus consume dedup|store|alerts`."""

from __future__ import annotations

from tradebus.cli import register_group

GROUP = {
    "dedup": ("consumers.dedup.cli", "data topics -> *.unique.v1, exactly once (Kafka transactions)"),
    "store": ("consumers.store.cli", "*.unique.v1 -> SQLite or PostgreSQL"),
    "alerts": ("consumers.alerts.cli", "rules over unique topics and status -> sinks and tradebus.alerts.v1"),
}


def register(parser) -> None:
    register_group(parser, GROUP, dest="worker", metavar="WORKER")
