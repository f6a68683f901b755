"""Access to the generated Anthid (contract C) protobuf and gRPC stubs.

`make protos` (bash protos/generate.sh) writes them to `<repo>/build/gen/trading/`,
or to `$TRADEBUS_GEN_DIR/trading/`. That directory is put on ``sys.path`` once,
because the generated modules import each other as ``trading.<name>_pb2``.

    from tradebus.protos import pb, pb_grpc
    event = pb.TradingEvent(heartbeat=pb.Heartbeat())

``pb`` is ``trading_pb2``: it re-exports every message and enum of the contract.
``pb_grpc`` is ``trading_service_pb2_grpc`` (stub, servicer, add_...to_server).
The per-file modules are available under their generated names as well.
Loading is lazy, so importing this module never fails; using a stub does when
the stubs were not generated.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from pathlib import Path
from types import ModuleType

GEN_DIR_ENV = "TRADEBUS_GEN_DIR"

# attribute name -> generated module (inside the `trading` package)
_MODULES = {
    "pb": "trading_pb2",
    "pb_grpc": "trading_service_pb2_grpc",
    "trading_pb2": "trading_pb2",
    "trading_service_pb2": "trading_service_pb2",
    "trading_service_pb2_grpc": "trading_service_pb2_grpc",
    "trading_models_pb2": "trading_models_pb2",
    "trading_types_pb2": "trading_types_pb2",
    "trading_instruments_pb2": "trading_instruments_pb2",
}

__all__ = ["ProtosMissingError", "gen_dir", "load", *_MODULES]

_lock = threading.Lock()
_path_added = False


class ProtosMissingError(ImportError):
    """The generated stubs are not where they should be."""


def gen_dir() -> Path:
    """Directory that holds the generated `trading` package."""
    override = os.environ.get(GEN_DIR_ENV)
    if override:
        return Path(override).resolve()
    return Path(__file__).resolve().parent.parent / "build" / "gen"


def _ensure_on_path() -> None:
    global _path_added
    with _lock:
        if _path_added:
            return
        root = gen_dir()
        if not (root / "trading" / "trading_service_pb2.py").is_file():
            raise ProtosMissingError(f"protobuf stubs missing: run `make protos` (looked in {root})")
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        _path_added = True


def load(name: str) -> ModuleType:
    """Import one generated module by its generated name, e.g. ``trading_models_pb2``."""
    _ensure_on_path()
    return importlib.import_module(f"trading.{name}")


def __getattr__(attr: str) -> ModuleType:  # PEP 562: lazy module attributes
    module_name = _MODULES.get(attr)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
    module = load(module_name)
    globals()[attr] = module  # later look-ups skip __getattr__
    return module
