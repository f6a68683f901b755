"""Signals become a stop flag the run loops check; shutdown is a feature."""

from __future__ import annotations

import logging
import signal
import threading

log = logging.getLogger(__name__)


def install_stop_handlers(stop: threading.Event | None = None) -> threading.Event:
    """SIGTERM and SIGINT set the returned event; a second signal exits hard."""
    stop = stop or threading.Event()

    def handle(signum, _frame):
        if stop.is_set():
            log.warning("second %s: exiting without a clean shutdown", signal.Signals(signum).name)
            raise SystemExit(1)
        log.info("%s received: stopping intake, flushing, then exiting", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop
