"""The HTI producer: every trade idea from /history and /stream onto
``hti.ideas.v1``, keyed by idea id, with nothing lost across disconnects.

One main thread does all upstream reading and publishing, so records are
published in the order they were received, and a full Kafka queue (produce()
blocks) stops the reading: TCP backpressure reaches the server instead of
memory growing. A small helper thread serves delivery reports (exact ack
times) and turns a stop request into closing the stream socket.

Session, repeated until stopped:
1. open the stream (rate-limited; 401/403 are fatal, 429/5xx back off);
2. wait for its first event (``ready``): from then on the server holds our
   subscription;
3. fetch /history and publish what the window has not seen; on a reconnect,
   a full page of nothing but unseen versions is reported as a possible gap;
4. read the stream until it ends, errs, stalls (no ping or idea for
   stall_s) or we are stopped; then back off (full jitter, at least the
   server's ``retry:``) and start again.
Opening the stream before fetching history closes the window in which an idea
could appear between the snapshot and the subscription (spec §9).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from producers.common.backoff import Backoff
from producers.common.runner import FatalSourceError, run_producer
from producers.hti.client import (
    AuthRejected, EventStream, HtiClient, HtiError, RateLimited, RequestRefused, Stopped, TransientError,
)
from producers.hti.intake import CONNECTED, SOURCE, AckHook, Counters, IdeaIntake
from producers.hti.pacing import TokenBucket
from producers.hti.settings import HtiProducerSettings
from producers.hti.sse import SseEvent
from tradebus import metrics
from tradebus.observability import event
from tradebus.config import CommonSettings
from tradebus.publishing import Publisher
from tradebus.redaction import redact_url
from tradebus.topics import HTI_IDEAS

log = logging.getLogger("tradebus.producers.hti")
EXIT_REJECTED = 3  # the API refused the code (401/403) or the request at start: fix the configuration


class HtiProducer:
    def __init__(self, settings: HtiProducerSettings, publisher: Publisher, stop: threading.Event, *,
                 beat: Callable[[], None] | None = None, client: HtiClient | None = None,
                 on_idea_ack: AckHook | None = None):
        self.settings = settings
        self.publisher = publisher
        self.stop_event = stop
        self.beat = beat  # the liveness beat (/healthz) of the main loop
        self.limiter = TokenBucket(60)  # until /auth tells us the profile's budget
        self.client = client or HtiClient(settings, self.limiter, stop)
        self.intake = IdeaIntake(settings, publisher, on_profile=self.client.apply_profile, on_idea_ack=on_idea_ack)
        self.backoff = Backoff(settings.backoff_base_s, settings.backoff_cap_s)
        self.authenticated = False
        self.stream_open = False
        self._stream: EventStream | None = None
        self._stream_lock = threading.Lock()
        self._done = threading.Event()
        self._helper: threading.Thread | None = None
        self._server_retry_ms: int | None = None  # the stream's ``retry:`` field, a floor for the reconnect delay
        self._ever_connected = False

    @property
    def counters(self) -> Counters:
        return self.intake.counters

    # -- standalone: HtiProducer(settings, publisher, stop).run() ------------

    def run(self) -> None:
        """started -> connect -> stream until stopped -> stopped -> flush.
        Raises AuthRejected / RequestRefused (not retryable) after a short
        flush, UnsentRecordsError when the final flush leaves records.
        (`tradebus produce hti` runs the same pieces under
        producers.common.runner through HtiSource.)"""
        self.start()
        try:
            self.publisher.status("started", "HTI producer started", details={"server": self.settings.server_url})
            if self.connect():
                self.stream()
        except (AuthRejected, RequestRefused) as exc:
            log.error("%s", exc)
            self.publisher.status("error", str(exc), details={"fatal": "true"})
            self._finish(fatal=True)
            raise
        except BaseException:
            self._finish(fatal=True)
            raise
        self._finish(fatal=False)

    def _finish(self, fatal: bool) -> None:
        self.close()
        self.publisher.status("stopped", "HTI producer stopped", details=self.counters.snapshot())
        timeout = min(self.settings.shutdown_timeout_s, 5.0) if fatal else self.settings.shutdown_timeout_s
        try:
            self.publisher.flush(timeout)
        except Exception as exc:
            if not fatal:
                raise
            log.error("flush after a fatal error failed: %s", exc)

    # -- the pieces ---------------------------------------------------------

    def readiness_checks(self) -> dict[str, Callable[[], bool]]:
        """The upstream side of /readyz (the runner adds Kafka)."""
        return {"hti_authenticated": lambda: self.authenticated, "hti_stream_open": lambda: self.stream_open}

    def start(self) -> None:
        """The helper thread: delivery reports, and stop -> close the stream."""
        self._helper = threading.Thread(target=self._serve_deliveries, name="hti-deliveries", daemon=True)
        self._helper.start()

    def connect(self) -> bool:
        """Authenticate, retrying transient failures; False when stopped first."""
        while not self.stop_event.is_set():
            try:
                profile = self.client.authenticate()
            except Stopped:
                return False
            except (RateLimited, TransientError) as exc:
                self._wait_after_failure(exc, "authentication")
                continue
            self.authenticated = True
            self.backoff.reset()
            event(log, logging.INFO, "authenticated with the HTI API", account=str(profile.get("account_name")),
                  request_limit_per_minute=profile.get("request_limit_per_minute"), server=self.settings.server_url)
            return True
        return False

    def stream(self) -> None:
        """Stream sessions until stopped; raises AuthRejected (or RequestRefused before any session worked)."""
        self._stream_sessions()

    def stop(self) -> None:
        """Stop intake now, from any thread."""
        self.stop_event.set()
        self._abort_stream()

    def close(self) -> None:
        """Close the stream, end the helper thread, close the HTTP session (no flush)."""
        self._abort_stream()
        self._done.set()
        if self._helper is not None and self._helper is not threading.current_thread():
            self._helper.join(timeout=2.0)
        self.client.close()

    def _beat(self) -> None:
        if self.beat is not None:
            self.beat()

    # -- sessions ---------------------------------------------------------

    def _stream_sessions(self) -> None:
        while not self.stop_event.is_set():
            reconnect = self._ever_connected
            opened_at = time.monotonic()
            connected = False
            reason = "stopped"
            failure: BaseException | None = None
            try:
                stream = self.client.open_stream(self.settings.poll_seconds, self.settings.stall_s)
                with self._stream_lock:
                    self._stream = stream
                if self.stop_event.is_set():
                    break
                event(log, logging.INFO, "HTI stream open", url=stream.url)
                self.stream_open = True
                CONNECTED.set(1)
                first = self._first_events(stream)
                try:
                    self.intake.backfill(self.client.history(self.settings.history_limit), reconnect)
                finally:
                    self.intake.handle_events(first)  # stream events already read are never lost
                connected = self._ever_connected = True
                poll = self.intake.poll_seconds
                self.publisher.status("connected", f"HTI stream connected (poll_seconds={poll:g})",
                                      details={"poll_seconds": poll, "reconnects": self.counters.reconnects})
                self._read_stream(stream)
            except Stopped:
                break
            except RequestRefused as exc:
                if not reconnect:
                    raise  # wrong from the start: retrying as it is cannot help
                reason, failure = str(exc), exc
            except (RateLimited, TransientError) as exc:
                reason, failure = str(exc), exc
            finally:
                self._close_stream()
            if self.stop_event.is_set():
                if connected:
                    self.publisher.status("disconnected", "stopping", details={"reason": "stopping"})
                break
            metrics.RECONNECTS.labels(source=SOURCE).inc()
            self.counters.add("reconnects")
            if connected:
                self.publisher.status("disconnected", reason, details={"reason": reason})
                if time.monotonic() - opened_at >= self.settings.backoff_reset_s:
                    self.backoff.reset()  # it was healthy for a while: this is a fresh failure
            retry_s = min(self._server_retry_ms / 1000.0, self.settings.backoff_cap_s) if self._server_retry_ms else 0.0
            self._wait_after_failure(failure, "stream", server_retry_s=retry_s)

    def _first_events(self, stream: EventStream) -> list[SseEvent]:
        """Read until the first event arrives (normally ``ready``)."""
        deadline = time.monotonic() + self.settings.stall_s
        while True:
            events = stream.read_events()
            if events:
                return events
            if time.monotonic() > deadline:
                raise TransientError(f"stream sent no event within {self.settings.stall_s:g}s")

    def _read_stream(self, stream: EventStream) -> None:
        stall_s = self.settings.stall_s
        last_live = time.monotonic()
        while not self.stop_event.is_set():
            events = stream.read_events()  # at most stall_s blocked: the socket's read timeout
            if self.intake.handle_events(events):
                # Measured after publishing: time spent blocked on a full Kafka queue is not upstream silence.
                last_live = time.monotonic()
            elif time.monotonic() - last_live > stall_s:
                raise TransientError(f"no ping or idea for {stall_s:g}s (comments only)")
            self._beat()

    def _close_stream(self) -> None:
        with self._stream_lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            self._server_retry_ms = stream.parser.retry_ms or self._server_retry_ms
            stream.close()
        self.stream_open = False
        CONNECTED.set(0)

    def _abort_stream(self) -> None:
        with self._stream_lock:
            stream = self._stream
        if stream is not None:
            stream.abort()

    def _wait_after_failure(self, exc: BaseException | None, what: str, server_retry_s: float = 0.0) -> None:
        if isinstance(exc, RateLimited) and exc.retry_after_s is not None:
            delay = exc.retry_after_s
        else:
            delay = max(self.backoff.next_delay(), server_retry_s)
        event(log, logging.WARNING, f"HTI {what} failed; retrying", error=str(exc) if exc else "", retry_in_s=round(delay, 3))
        deadline = time.monotonic() + delay
        while not self.stop_event.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.stop_event.wait(min(left, 1.0))
            self._beat()

    # -- helper thread ----------------------------------------------------

    def _serve_deliveries(self) -> None:
        """Serve delivery reports promptly (exact ack times) and turn a stop
        request into closing the stream, which wakes a blocked read."""
        aborted = False
        while not self._done.is_set():
            self.publisher.producer.poll(0.05)
            if self.intake.in_produce:
                self._beat()  # waiting on a full Kafka queue is backpressure, not a hung loop
            if not aborted and self.stop_event.is_set():
                aborted = True
                self._abort_stream()


class HtiSource:
    """HtiProducer as a producers.common.runner ProducerSource, for `tradebus produce hti`."""

    name = SOURCE
    data_topics = [HTI_IDEAS]

    def __init__(self, settings: HtiProducerSettings, **producer_options):
        self.settings = settings
        self.producer_options = producer_options
        self.producer: HtiProducer | None = None

    def readiness_checks(self) -> dict[str, Callable[[], bool]]:
        return {"hti_authenticated": lambda: self.producer is not None and self.producer.authenticated,
                "hti_stream_open": lambda: self.producer is not None and self.producer.stream_open}

    def connect(self, publisher: Publisher, stop: threading.Event) -> None:
        self.producer = HtiProducer(self.settings, publisher, stop, **self.producer_options)
        self.producer.start()
        try:
            self.producer.connect()
        except (AuthRejected, RequestRefused) as exc:
            self._fatal(exc)

    def run(self, beat: Callable[[], None]) -> None:
        assert self.producer is not None, "connect() first"
        self.producer.beat = beat
        try:
            self.producer.stream()
        except (AuthRejected, RequestRefused) as exc:
            self._fatal(exc)

    def _fatal(self, exc: HtiError) -> None:
        # The message names the status, the reason and the setting to fix; it never holds the code.
        self.producer.publisher.status("error", str(exc), details={"fatal": "true"})
        raise FatalSourceError(str(exc), EXIT_REJECTED) from None

    def stop(self) -> None:
        if self.producer is not None:
            self.producer.stop()

    def cleanup(self) -> None:
        if self.producer is not None:
            self.producer.close()


def run(settings: HtiProducerSettings, common: CommonSettings, *, stop: threading.Event | None = None,
        publisher: Publisher | None = None, **producer_options) -> int:
    """`tradebus produce hti`: the shared producer life (status, health, flush, exit codes)."""
    source = HtiSource(settings, **producer_options)
    return run_producer(common, source, stop=stop, publisher=publisher,
                        details={"server": redact_url(settings.server_url)})


__all__ = ["HtiProducer", "HtiSource", "run", "AuthRejected", "RequestRefused", "EXIT_REJECTED"]
