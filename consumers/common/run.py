"""CLI glue shared by the workers: logging, stop handlers, then run()."""

from __future__ import annotations

import logging
import sys
import threading
from typing import Callable

from consumers.common.worker import BatchWorker
from tradebus.config import CommonSettings
from tradebus.lifecycle import install_stop_handlers
from tradebus.observability import setup_logging
from tradebus.serde import SchemaRegistrationError

log = logging.getLogger(__name__)


def run_worker(common: CommonSettings, build: Callable[[threading.Event], BatchWorker]) -> int:
    """Set up logging and SIGTERM/SIGINT, build the worker with the stop
    event, run it. ConfigError propagates (the CLI exits 2 naming the setting)."""
    setup_logging(common.log_level, common.log_format)
    stop = install_stop_handlers()
    try:
        return build(stop).run()
    except SchemaRegistrationError as exc:
        # Unreachable registry or an incompatible schema: a clear line, no traceback.
        log.critical("worker stops: %s", exc)
        print(f"tradebus: {exc}", file=sys.stderr)
        return 1
