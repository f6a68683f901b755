"""`tradebus consume dedup|store|alerts`."""

from __future__ import annotations

import importlib

GROUP = {
    "dedup": ("consumers.dedup.cli", "data topics -> *.unique.v1, exactly once (Kafka transactions)"),
    "store": ("consumers.store.cli", "*.unique.v1 -> SQLite or PostgreSQL"),
    "alerts": ("consumers.alerts.cli", "rules over unique topics and status -> sinks and tradebus.alerts.v1"),
}


def register(parser) -> None:
    sub = parser.add_subparsers(dest="worker", metavar="WORKER")
    for name, (module_name, help_text) in GROUP.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue
            raise
        module.register(sub.add_parser(name, help=help_text))
    parser.set_defaults(func=lambda a: parser.print_help() or 2)
