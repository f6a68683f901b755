"""Structured JSON logs with secret redaction, and the per-process HTTP
server for /metrics (Prometheus), /healthz and /readyz."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from tradebus.redaction import redact

log = logging.getLogger("tradebus")


class RedactingJsonFormatter(logging.Formatter):
    """One JSON object per line; message, extras and tracebacks redacted."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, value in getattr(record, "fields", {}).items():
            entry[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exc"] = redact("".join(traceback.format_exception(*record.exc_info)))
        return json.dumps(entry, default=str)


class RedactingTextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", None)
        if fields:
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return redact(text)


def setup_logging(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(RedactingJsonFormatter())
    else:
        handler.setFormatter(RedactingTextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The registry client logs every HTTP request at INFO: noise, not events.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # An uncaught exception's traceback goes through the same redaction.
    sys.excepthook = lambda et, ev, tb: log.critical("uncaught exception", exc_info=(et, ev, tb))
    threading.excepthook = lambda a: log.critical(
        "uncaught exception in thread %s", a.thread.name if a.thread else "?", exc_info=(a.exc_type, a.exc_value, a.exc_traceback)
    )


class RepeatThrottle:
    """Lets the first occurrence of a repeated message through, then at most one
    per ``interval_s`` per key, telling how many were held back meanwhile.

    librdkafka reports "all brokers down" once per client thread and retry
    while a broker restarts: hundreds of identical lines that hide the one
    that matters."""

    def __init__(self, interval_s: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.interval_s = interval_s
        self._clock = clock
        self._last: dict[object, float] = {}
        self._held: dict[object, int] = {}
        self._lock = threading.Lock()

    def allow(self, key: object) -> int | None:
        """None: hold this one back. Otherwise log it, adding the returned count
        of identical messages held back since the last one logged."""
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval_s:
                self._held[key] = self._held.get(key, 0) + 1
                return None
            self._last[key] = now
            return self._held.pop(key, 0)

    def suffix(self, key: object) -> str | None:
        """:meth:`allow` as text to append to the line: None (hold it back),
        "" or " (N more like it held back)"."""
        held = self.allow(key)
        if held is None:
            return None
        return f" ({held} more like it held back)" if held else ""


def event(logger: logging.Logger, level: int, msg: str, **fields) -> None:
    """Log a message with structured fields (kept as JSON keys)."""
    logger.log(level, msg, extra={"fields": fields})


class HealthState:
    """Liveness and readiness as the process itself sees them.

    Liveness only says the main loop is turning; it never depends on Kafka or
    the upstream, so an outage does not get the pod restarted in a loop.
    """

    def __init__(self, readiness_checks: dict[str, Callable[[], bool]] | None = None, stall_after_s: float = 120.0):
        self.readiness_checks = dict(readiness_checks or {})
        self.stall_after_s = stall_after_s
        self._last_beat = time.monotonic()

    def beat(self) -> None:
        self._last_beat = time.monotonic()

    def alive(self) -> tuple[bool, str]:
        age = time.monotonic() - self._last_beat
        return (age < self.stall_after_s, f"main loop last turned {age:.1f}s ago")

    def ready(self) -> tuple[bool, dict[str, bool]]:
        results = {}
        for name, check in self.readiness_checks.items():
            try:
                results[name] = bool(check())
            except Exception:  # a failing check means not ready, never a crash
                results[name] = False
        return (all(results.values()), results)


class _Handler(BaseHTTPRequestHandler):
    state: HealthState

    def do_GET(self):  # noqa: N802 (http.server API)
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            ok, detail = self.state.alive()
            self._send(200 if ok else 503, json.dumps({"alive": ok, "detail": detail}).encode())
        elif path == "/readyz":
            ok, checks = self.state.ready()
            self._send(200 if ok else 503, json.dumps({"ready": ok, "checks": checks}).encode())
        else:
            self._send(404, b'{"detail": "Not Found"}')

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet: probes hit this every few seconds
        pass


class ObservabilityServer:
    """Serves /metrics, /healthz and /readyz on a daemon thread."""

    def __init__(self, state: HealthState, port: int, host: str = "0.0.0.0"):
        handler = type("Handler", (_Handler,), {"state": state})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="observability", daemon=True)

    def start(self) -> "ObservabilityServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def start_observability(state: HealthState, port: int) -> ObservabilityServer | None:
    """Start the server unless port is 0 (disabled)."""
    if port == 0:
        return None
    try:
        return ObservabilityServer(state, port).start()
    except OSError as exc:
        from tradebus.config import ConfigError

        raise ConfigError(f"TRADEBUS_HTTP_PORT: cannot listen on port {port} ({exc.strerror})") from None
