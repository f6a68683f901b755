"""What happens to each event of one connection: data to its topic (flagged
replay while a primed replay of its kind is running), control events to the
status topic, anything unconvertible to the DLQ with its bytes and reason."""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from typing import Callable, Iterable

from producers.anthid.convert import DATA_KINDS, DataKind, convert_data
from producers.anthid.values import ConversionError, enum_name, to_datetime
from tradebus import metrics
from tradebus.observability import event as log_event
from tradebus.protos import pb
from tradebus.publishing import Publisher

log = logging.getLogger(__name__)
SOURCE = "anthid"
PRIMED_ALWAYS = {"EVENT_TYPE_BROKER_POSITION"}
PRIMED_WITH_ORDER_DELIVERY = {"EVENT_TYPE_BROKER_ORDER"}
TRADING_EVENT = {"message_type": "trading.TradingEvent"}

# (emit time as epoch seconds, delivery error or None) -> None
AckObserver = Callable[[float, object], None]


def primed_kinds(event_types: Iterable[str], order_delivery: str) -> set[str]:
    """The kinds a Subscribe will replay, each ended by a `primed` (spec §4.5)."""
    kinds = set(event_types) & PRIMED_ALWAYS
    if order_delivery == "PRIMED":
        kinds |= set(event_types) & PRIMED_WITH_ORDER_DELIVERY
    return kinds


class ReplayTracker:
    """Counts the primed markers still due per kind on one call.

    Each Subscribe sent expects one `primed` per replayed kind. `Primed`
    carries no scope, so with several scopes on a call a kind counts as
    replaying until every scope's marker came; a live event caught in that
    window is flagged replay too, which only makes it a candidate for the
    consumers' exact-repeat dedup. Subscribes are answered in order, by a
    `status` (accepted) or an `error` (rejected): a rejected one will never
    send its markers, so its expectation is withdrawn.
    """

    def __init__(self) -> None:
        self._due: Counter[str] = Counter()
        self._unanswered: deque[frozenset[str]] = deque()

    def expect(self, kinds: Iterable[str]) -> None:
        kinds = frozenset(kinds)
        self._unanswered.append(kinds)
        self._due.update(kinds)

    def accepted(self) -> None:
        if self._unanswered:
            self._unanswered.popleft()

    def rejected(self) -> None:
        if self._unanswered:
            for kind in self._unanswered.popleft():
                self.primed(kind)

    def primed(self, kind: str) -> None:
        if self._due[kind] > 0:
            self._due[kind] -= 1

    def replaying(self, kind: str) -> bool:
        return self._due[kind] > 0

    def reset(self) -> None:
        self._due.clear()
        self._unanswered.clear()


class EventHandler:
    def __init__(self, publisher: Publisher, *, heartbeat_status_s: float, details: dict | None = None,
                 ack_observer: AckObserver | None = None, clock=time.monotonic):
        self.publisher = publisher
        self.replay = ReplayTracker()
        self._heartbeat_status_s = heartbeat_status_s
        self._last_heartbeat_status: float | None = None
        self._details = dict(details or {})
        self._clock = clock
        emit_to_ack = metrics.EMIT_TO_ACK.labels(source=SOURCE)
        self._ack_observer = ack_observer or (lambda emitted, err: err is None and emit_to_ack.observe(time.time() - emitted))
        self._counted = {name: metrics.UPSTREAM_EVENTS.labels(source=SOURCE, kind=name)
                         for name in (f.name for f in pb.TradingEvent.DESCRIPTOR.oneofs_by_name["event"].fields)}
        self._heartbeats_skipped = metrics.DROPPED.labels(source=SOURCE, reason="heartbeat_status_throttled")

    def handle(self, raw: bytes, event) -> None:
        if event is None:
            self._dead_letter("parse", "undecodable", None, raw, "not a trading.TradingEvent")
            return
        which = event.WhichOneof("event")
        counter = self._counted.get(which)
        (counter or metrics.UPSTREAM_EVENTS.labels(source=SOURCE, kind="unknown")).inc()
        kind = DATA_KINDS.get(which)
        if kind is not None:
            self._publish_data(kind, event, raw)
        elif which == "heartbeat":
            self._heartbeat(event.heartbeat, raw)
        elif which == "primed":
            name = enum_name(pb.EventType, event.primed.event_type)
            self.replay.primed(name)
            self.publisher.status("primed", None, event_type=name, details=self._details, payload=raw)
        elif which == "status":
            if event.status.message == "subscribed":
                self.replay.accepted()
            log_event(log, logging.INFO, "anthid status", status=event.status.message, **self._details)
            self.publisher.status("status", event.status.message, details=self._details, payload=raw)
        elif which == "error":
            # An application error (e.g. an invalid subscription): recorded, not fatal.
            self.replay.rejected()
            log_event(log, logging.WARNING, "anthid error event", error=event.error.message, **self._details)
            self.publisher.status("error", event.error.message, details=self._details, payload=raw)
        else:  # a member this contract does not know (newer server): keep the bytes
            self._dead_letter("parse", "unknown_event", None, raw, "TradingEvent with no known member set")

    def _publish_data(self, kind: DataKind, event, raw: bytes) -> None:
        try:
            key, record = convert_data(kind, event, raw)
        except ConversionError as exc:
            self._dead_letter("convert", exc.reason, exc, raw, str(exc), kind)
            return
        record["metadata"] = self.publisher.metadata(kind.event, self.replay.replaying(kind.event_type))
        try:
            value = self.publisher.serialize(kind.topic, record)
        except Exception as exc:  # noqa: BLE001 - any encoder failure is this record's, not the process's
            self._dead_letter("serialize", "avro_encode_failed", exc, raw, "Avro encoding failed", kind)
            return
        received = getattr(event, kind.event).received_at
        emitted = received.seconds + received.nanos / 1e9
        observer = self._ack_observer
        self.publisher.publish_bytes(kind.topic, key, value, lambda err, _msg: observer(emitted, err))

    def _heartbeat(self, heartbeat, raw: bytes) -> None:
        now = self._clock()
        if self._last_heartbeat_status is not None and now - self._last_heartbeat_status < self._heartbeat_status_s:
            self._heartbeats_skipped.inc()  # liveness was recorded by the session; the status topic is not a firehose
            return
        self._last_heartbeat_status = now
        sent_at = to_datetime(heartbeat.sent_at) if heartbeat.HasField("sent_at") else None
        self.publisher.status("heartbeat", None, upstream_time=sent_at, details=self._details, payload=raw)

    def _dead_letter(self, stage: str, reason: str, error, raw: bytes, text: str, kind: DataKind | None = None) -> None:
        self.publisher.dead_letter(
            stage=stage, reason=reason, error=error, payload=raw, encoding="protobuf",
            upstream_event=kind.event if kind else None, target_topic=kind.topic if kind else None,
            details={**TRADING_EVENT, **self._details, **({} if error else {"detail": text})},
        )
