"""The life of a producer process, the same for every upstream:

    Publisher (schemas registered: fail fast) -> /metrics /healthz /readyz
    -> status `started` -> source.connect() -> source.run(beat) until a stop
    signal or a fatal upstream error -> source.stop() (stop intake) ->
    source.cleanup() -> status `stopped` -> flush (loud when records are left).

Exit codes: 0 clean stop; 1 records left unacknowledged after the flush,
records that failed delivery during the run, a fatal Kafka error, or the
registry refusing our schemas; a source's own code for a fatal upstream
error (e.g. 3 for refused credentials). Configuration errors (2) are raised
before this runs.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Callable, Protocol, Sequence

from tradebus.config import CommonSettings
from tradebus.kafka import FatalProducerError, IntakeStopped, UnsentRecordsError
from tradebus.lifecycle import install_stop_handlers
from tradebus.observability import HealthState, start_observability
from tradebus.publishing import Publisher
from tradebus.redaction import redact
from tradebus.serde import SchemaRegistrationError
from tradebus.topics import Topic

log = logging.getLogger(__name__)
STATUS_PUBLISH_TIMEOUT_S = 2.0


class FatalSourceError(RuntimeError):
    """The upstream refused us for good (e.g. bad credentials): no retry,
    exit with ``exit_code``. The message must name what to fix and hold no secret."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


class ProducerSource(Protocol):
    name: str  # the `source` of every record and status event, e.g. "anthid"
    data_topics: Sequence[Topic]

    def readiness_checks(self) -> dict[str, Callable[[], bool]]: ...  # upstream side; the runner adds kafka

    def connect(self, publisher: Publisher, stop: threading.Event) -> None: ...

    def run(self, beat: Callable[[], None]) -> None: ...  # returns when stop is set; may raise FatalSourceError

    def stop(self) -> None: ...  # stop intake; called from another thread, idempotent

    def cleanup(self) -> None: ...


def run_producer(common: CommonSettings, source: ProducerSource, *, stop: threading.Event | None = None,
                 publisher: Publisher | None = None, details: dict | None = None) -> int:
    """Run ``source`` until stopped. Without ``stop``, SIGTERM/SIGINT are
    installed (main thread only); tests pass an Event of their own."""
    stop = stop if stop is not None else install_stop_handlers()
    try:
        publisher = publisher or Publisher(common, source.name, source.data_topics, stop=stop)
    except SchemaRegistrationError as exc:
        return _fatal(source.name, str(exc), 1)
    checks = {**source.readiness_checks(), "kafka": publisher.producer.kafka_reachable}
    health = HealthState(checks)
    server = start_observability(health, common.http_port)
    publisher.status("started", None, details=details)
    threading.Thread(target=_stop_on_signal, args=(stop, source), name="stop-watcher", daemon=True).start()
    exit_code = 0
    try:
        source.connect(publisher, stop)
        source.run(health.beat)
    except FatalSourceError as exc:
        exit_code = _fatal(source.name, str(exc), exc.exit_code)
    except FatalProducerError as exc:
        exit_code = _fatal(source.name, f"Kafka producer failed: {exc}", 1)
    except IntakeStopped:
        log.warning("stop requested while Kafka was not taking records; flushing what is queued")
    finally:
        stop.set()
        source.stop()
        source.cleanup()
        exit_code = _shutdown(publisher, common.shutdown_timeout_s, exit_code, details)
        if server is not None:
            server.stop()
    return exit_code


def _stop_on_signal(stop: threading.Event, source: ProducerSource) -> None:
    stop.wait()
    source.stop()  # intake ends at once; run() then returns and the runner flushes


def _shutdown(publisher: Publisher, timeout: float, exit_code: int, details: dict | None) -> int:
    # With Kafka down and the queue full, a status produce would wait for
    # room forever: give it a moment, then go on to the (loud) flush.
    def send_stopped():
        try:
            publisher.status("stopped", None, details={**(details or {}), "exit_code": str(exit_code)})
        except IntakeStopped:
            pass  # queue full with Kafka down: the flush below reports what is left

    sender = threading.Thread(target=send_stopped, daemon=True)
    sender.start()
    sender.join(STATUS_PUBLISH_TIMEOUT_S)
    try:
        publisher.flush(timeout)
    except UnsentRecordsError as exc:
        log.error("shutdown: %s; they are lost unless the upstream delivers them again", exc)
        print(f"tradebus: {exc} at shutdown", file=sys.stderr)
        return exit_code or 1
    except FatalProducerError as exc:
        log.error("shutdown: Kafka producer failed: %s", redact(str(exc)))
        return exit_code or 1
    failed = getattr(publisher.producer, "failed", 0)
    if failed:
        log.error("stopped: %d records acknowledged, %d failed delivery (see the errors above)", publisher.producer.acked, failed)
        print(f"tradebus: {failed} records failed delivery during this run", file=sys.stderr)
        return exit_code or 1
    log.info("stopped: every record acknowledged (%d this run)", publisher.producer.acked)
    return exit_code


def _fatal(name: str, message: str, exit_code: int) -> int:
    message = redact(message)
    log.critical("%s producer stops: %s", name, message)
    print(f"tradebus produce {name}: {message}", file=sys.stderr)
    return exit_code
