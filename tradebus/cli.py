"""The `tradebus` command: parses arguments and hands over to one `run()`.

Each command group lives in its own module, which exposes
``register(subparsers)`` and sets ``func`` on its parsers. Modules are imported
lazily so that, for example, `tradebus sim hti` does not load grpc.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# (command, module, help). The module's register(sub) adds its sub-parsers.
COMMANDS: list[tuple[str, str, str]] = [
    ("topics", "tradebus.topics_cli", "create or list the topics and their schemas"),
    ("sim", "simulators.cli", "run a simulator of an upstream API"),
    ("produce", "producers.cli", "run a producer (upstream -> Kafka)"),
    ("consume", "consumers.cli", "run a consumer worker"),
    ("tail", "tradebus.tools.tail", "print decoded records of a topic"),
    ("status", "tradebus.tools.status", "health of the stack and the pipeline"),
    ("verify", "tradebus.tools.verify", "compare a store with a simulator ledger"),
    ("demo", "tradebus.tools.demo", "run the whole pipeline locally with a live view"),
]


def register_group(parser, group: dict[str, tuple[str, str]], dest: str, metavar: str) -> None:
    """Sub-commands of a command group, each from a module imported lazily
    (a module not present in this checkout is left out)."""
    sub = parser.add_subparsers(dest=dest, metavar=metavar)
    for name, (module_name, help_text) in group.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue
            raise
        module.register(sub.add_parser(name, help=help_text))
    parser.set_defaults(func=lambda a: parser.print_help() or 2)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tradebus", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="a KEY=VALUE env file read before the environment (local use)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name, help_text in COMMANDS:
        if only is not None and name != only:
            sub.add_parser(name, help=help_text)
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # command not built yet in this checkout
            raise
        p = sub.add_parser(name, help=help_text)
        module.register(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    known = {c[0] for c in COMMANDS}
    parser = build_parser(only=first if first in known else None)
    args = parser.parse_args(argv)
    if args.config:
        from tradebus.config import load_env_file

        load_env_file(args.config)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    from tradebus.config import ConfigError

    try:
        rc = func(args)
    except ConfigError as exc:
        # Bad configuration fails at start, naming the setting; no traceback.
        print(f"tradebus: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
