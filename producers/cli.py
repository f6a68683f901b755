"""`tradebus produce hti|anthid`."""

from __future__ import annotations

import importlib

GROUP = {
    "hti": ("producers.hti.cli", "HTI trade ideas (REST + SSE) -> hti.ideas.v1"),
    "anthid": ("producers.anthid.cli", "Anthid gRPC events -> anthid.* topics"),
}


def register(parser) -> None:
    sub = parser.add_subparsers(dest="producer", metavar="SOURCE")
    for name, (module_name, help_text) in GROUP.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue
            raise
        module.register(sub.add_parser(name, help=help_text))
    parser.set_defaults(func=lambda a: parser.print_help() or 2)
