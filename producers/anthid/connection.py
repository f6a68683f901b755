"""One upstream connection and its reconnect loop: open the channel, attach
StreamEvents, subscribe every account scope it serves, hand events to its
handler; on UNAVAILABLE, RESOURCE_EXHAUSTED, a stream end or a heartbeat
stall, back off (full jitter) and do it all again. Bad credentials are fatal.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone

import grpc

from producers.anthid.channel import call_metadata, open_channel
from producers.anthid.handler import EventHandler, primed_kinds
from producers.anthid.session import StreamSession
from producers.anthid.settings import AnthidProducerSettings
from producers.common.backoff import Backoff
from producers.common.runner import FatalSourceError
from tradebus.kafka import IntakeStopped
from tradebus import metrics
from tradebus.observability import event as log_event
from tradebus.protos import pb
from tradebus.redaction import redact

log = logging.getLogger(__name__)
AUTH_FAILURES = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}
EXIT_AUTH = 3
NO_REPLAY_KINDS = ("EVENT_TYPE_BROKER_TRADE", "EVENT_TYPE_INTENT_ACTION")


class Connection:
    def __init__(self, index: int, settings: AnthidProducerSettings, accounts: tuple[str, ...], handler: EventHandler,
                 stop: threading.Event, *, channel_factory=open_channel):
        self.index = index
        self.settings = settings
        self.accounts = accounts
        self.handler = handler
        self.stop_event = stop
        self.channel_factory = channel_factory
        self.attached = False
        self.fatal: FatalSourceError | None = None
        self.connects = 0
        self._session: StreamSession | None = None
        self._lock = threading.Lock()
        self._event_types = [f"EVENT_TYPE_{k}" for k in settings.event_kinds]
        self._backoff = Backoff(settings.backoff_initial_s, settings.backoff_max_s)
        self.thread = threading.Thread(target=self.run, name=f"anthid-connection-{index}", daemon=True)

    @property
    def details(self) -> dict:
        scope = "org-wide" if self.accounts == ("",) else f"{len(self.accounts)} accounts"
        return {"connection": str(self.index), "target": self.settings.target, "scope": scope}

    def run(self) -> None:
        lost_at: datetime | None = None  # when an attached stream was lost, for the gap report
        while not self.stop_event.is_set():
            connects_before = self.connects
            try:
                reason = self._attempt(lost_at)
            except FatalSourceError as exc:
                self.fatal = exc
                self.stop_event.set()
                return
            except IntakeStopped:
                return  # stop requested while Kafka was not taking records: the runner flushes and reports
            except Exception as exc:  # noqa: BLE001 - e.g. a fatal Kafka error: the process must not run on without intake
                log.exception("anthid connection %d failed", self.index)
                self.fatal = FatalSourceError(f"connection {self.index} failed: {type(exc).__name__}: {redact(str(exc))}")
                self.stop_event.set()
                return
            if self.stop_event.is_set():
                return
            if self.connects > connects_before:  # it was attached (and any earlier gap reported): a new loss
                lost_at = datetime.now(timezone.utc)
            metrics.RECONNECTS.labels(source="anthid").inc()
            delay = self._backoff.next_delay()
            log_event(log, logging.WARNING, "anthid stream lost; reconnecting", reason=reason,
                      retry_in_s=round(delay, 2), **self.details)
            self.handler.publisher.status("disconnected", reason, details={**self.details, "retry_in_s": f"{delay:.2f}"})
            if self.stop_event.wait(delay):
                return

    def _attempt(self, lost_at: datetime | None) -> str:
        channel = self.channel_factory(self.settings)
        session = StreamSession(channel, call_metadata(self.settings), heartbeat_timeout_s=self.settings.heartbeat_timeout_s)
        with self._lock:
            self._session = session
            if self.stop_event.is_set():
                session.close()
        try:
            session.open()
            self._subscribe(session)
            for raw, event in session:
                if not self.attached:
                    self._on_attach(lost_at)
                self.handler.handle(raw, event)
            return "stream ended by the server"
        except grpc.RpcError as exc:
            return self._classify(exc, session)
        finally:
            self._set_attached(False)
            session.close()
            channel.close()

    def _subscribe(self, session: StreamSession) -> None:
        self.handler.replay.reset()
        delivery = pb.ORDER_DELIVERY_PRIMED if self.settings.order_delivery == "PRIMED" else pb.ORDER_DELIVERY_LIVE
        numbers = [pb.EventType.Value(name) for name in self._event_types]
        for account in self.accounts:
            session.subscribe(account, numbers, delivery)
            self.handler.replay.expect(primed_kinds(self._event_types, self.settings.order_delivery))

    def _on_attach(self, lost_at: datetime | None) -> None:
        self._set_attached(True)
        self.connects += 1
        self._backoff.reset()  # the server answered: the next outage starts from a short delay
        publisher = self.handler.publisher
        publisher.status("connected", None, details={**self.details, "connects": str(self.connects)})
        log_event(log, logging.INFO, "anthid stream attached", **self.details)
        if lost_at is None:
            return
        for kind in NO_REPLAY_KINDS:
            if kind in self._event_types:
                publisher.gap(kind, "stream reconnected; Anthid has no replay for this kind, events emitted while "
                                    "disconnected may be missing", disconnected_at=lost_at.isoformat(),
                              reconnected_at=datetime.now(timezone.utc).isoformat(), **self.details)

    def _classify(self, exc: grpc.RpcError, session: StreamSession) -> str:
        if session.stalled:
            return f"no heartbeat for {self.settings.heartbeat_timeout_s:g}s"
        if session.cancel_reason == "closed":
            return "closed"
        code = exc.code() if hasattr(exc, "code") else None
        details = redact(exc.details() or "") if hasattr(exc, "details") else ""
        if code in AUTH_FAILURES:
            raise FatalSourceError(
                f"Anthid refused the credentials ({code.name}: {details or 'no detail'}); check TRADEBUS_ANTHID_API_KEY"
                f" and that the key's organization may read the configured accounts", exit_code=EXIT_AUTH,
            )
        # UNAVAILABLE, RESOURCE_EXHAUSTED (over the organization's connection
        # limit), INTERNAL, DEADLINE_EXCEEDED...: all transient for a stream.
        return f"{code.name if code else 'ERROR'}: {details}"

    def _set_attached(self, value: bool) -> None:
        if self.attached != value:
            self.attached = value
            metrics.UPSTREAM_CONNECTED.labels(source="anthid").inc(1 if value else -1)

    def stop(self) -> None:
        """Stop intake: cancel the call and end its request stream."""
        with self._lock:
            session = self._session
        if session is not None:
            session.close()
