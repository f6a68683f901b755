"""`tradebus sim hti|anthid`: each simulator registers its own sub-command.

A simulator whose package is not in this checkout (or cannot be imported) is
left out, so one simulator never blocks the other.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# (sub-command, module exposing register(parser), help)
SIMULATORS: list[tuple[str, str, str]] = [
    ("hti", "simulators.hti.cli", "HTI trade-idea stream simulator"),
    ("anthid", "simulators.anthid.cli", "Anthid gRPC trading event stream simulator"),
]


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="simulator", metavar="SIMULATOR")
    for name, module_name, help_text in SIMULATORS:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            if not (isinstance(exc, ModuleNotFoundError) and exc.name and module_name.startswith(exc.name)):
                # present but broken: say so instead of hiding the sub-command silently
                print(f"tradebus sim: {name} unavailable ({exc})", file=sys.stderr)
            continue
        module.register(sub.add_parser(name, help=help_text, description=help_text))
