"""What happens to each thing the HTI API sends: stream events and history
pages become typed records on hti.ideas.v1 (in the order received), repeats
inside the window are dropped and counted, bad data goes to the DLQ, upstream
errors and heartbeats to the status topic, and a history page of nothing but
unseen versions after a reconnect is reported as a possible gap."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from producers.hti.convert import ConversionError, history_idea_texts, idea_record, parse_json_object
from producers.hti.settings import HtiProducerSettings
from producers.hti.sse import SseEvent
from producers.hti.window import SeenWindow
from tradebus import metrics
from tradebus.observability import event
from tradebus.publishing import Publisher
from tradebus.redaction import redact
from tradebus.topics import HTI_IDEAS

log = logging.getLogger("tradebus.producers.hti")

SOURCE = "hti"
PARSE_REASONS = {"invalid_json", "not_an_object", "bad_history"}
MAX_DLQ_PAYLOAD = 512 * 1024  # a dead letter must fit in one Kafka record
AckHook = Callable[[str, str, float, float], None]  # (idea_id, LAST_UPDATE text, received and acked unix times)

# Metric children looked up once: labels() costs more than the increment. Ideas received =
# tradebus_upstream_events_total{source="hti",kind=~"idea|history"}.
EVENTS = {kind: metrics.UPSTREAM_EVENTS.labels(source=SOURCE, kind=kind)
          for kind in ("idea", "ping", "ready", "error", "other", "history")}
DUPLICATES = metrics.DROPPED.labels(source=SOURCE, reason="duplicate")
LATENCY = metrics.PUBLISH_LATENCY.labels(source=SOURCE)
LAST_EVENT = metrics.UPSTREAM_LAST_EVENT.labels(source=SOURCE)
CONNECTED = metrics.UPSTREAM_CONNECTED.labels(source=SOURCE)


@dataclass
class Counters:
    """What the heartbeat status reports. Only ``published`` changes outside
    the main thread (delivery reports), so only it takes the lock."""

    received: int = 0
    published: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    reconnects: int = 0
    gaps: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, n: int = 1) -> None:
        setattr(self, name, getattr(self, name) + n)

    def add_published(self) -> None:
        with self.lock:
            self.published += 1

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return {k: getattr(self, k) for k in ("received", "published", "duplicates", "dead_letters", "reconnects", "gaps")}


class IdeaIntake:
    def __init__(self, settings: HtiProducerSettings, publisher: Publisher, *,
                 on_profile: Callable[[dict], None], on_idea_ack: AckHook | None = None):
        self.settings = settings
        self.publisher = publisher
        self.on_profile = on_profile  # the profile in ready/history data updates the request budget
        self.on_idea_ack = on_idea_ack
        self.window = SeenWindow(settings.window_size)
        self.zone = settings.zone
        self.counters = Counters()
        self.poll_seconds = settings.poll_seconds  # as the server's ready event states it
        self.in_produce = False  # True while produce() may wait for queue space (backpressure)
        self._last_heartbeat = time.monotonic()

    def handle_events(self, events: list[SseEvent]) -> bool:
        """Publish what the events carry; True when one of them proves the stream alive."""
        live = False
        for ev in events:
            kind = ev.event
            if kind == "idea":
                live = True
                self._count_event("idea")
                self._stream_idea(ev)
            elif kind == "ping":
                live = True
                self._count_event("ping")
            elif kind == "ready":
                live = True
                self._count_event("ready")
                self._ready(ev)
            elif kind == "error":
                self._count_event("error")
                log.warning("HTI stream error event: %s", ev.data[:500])
                self.publisher.status("error", ev.data[:2000] or "(no data)", event_type="error",
                                      payload=redact(ev.data).encode("utf-8")[:MAX_DLQ_PAYLOAD])
            else:
                self._count_event("other")
                log.debug("HTI stream event %r ignored", ev.event[:40])
        if events:
            LAST_EVENT.set(time.time())
        if live:
            self._maybe_heartbeat()
        return live

    def _count_event(self, kind: str) -> None:
        EVENTS[kind].inc()

    def _ready(self, ev: SseEvent) -> None:
        # The ready data echoes the profile, API code included: read it, never log it.
        try:
            data = parse_json_object(ev.data)
        except ConversionError:
            return
        poll = data.get("poll_seconds")
        if isinstance(poll, (int, float)) and not isinstance(poll, bool) and poll > 0:
            self.poll_seconds = float(poll)
        profile = data.get("profile")
        if isinstance(profile, dict):
            self.on_profile(profile)

    def _maybe_heartbeat(self) -> None:
        now = time.monotonic()
        if now - self._last_heartbeat >= self.settings.heartbeat_status_s:
            self._last_heartbeat = now
            self.publisher.status("heartbeat", "HTI stream alive", details=self.counters.snapshot())

    def _stream_idea(self, ev: SseEvent) -> None:
        self.counters.add("received")
        received = time.time()
        metadata = self.publisher.metadata("idea", False, datetime.fromtimestamp(received, timezone.utc))
        try:
            record = idea_record(parse_json_object(ev.data), ev.data, self.zone, metadata)
        except ConversionError as exc:
            self._dead_letter(exc, ev.data.encode("utf-8"), "idea")
            return
        self._publish(record, received)

    def backfill(self, body: bytes, reconnect: bool) -> None:
        """Publish the versions of a /history body not yet seen."""
        try:
            envelope, items = history_idea_texts(body.decode("utf-8-sig"))
        except (UnicodeDecodeError, ConversionError) as exc:
            error = exc if isinstance(exc, ConversionError) else ConversionError("invalid_json", f"not UTF-8: {exc.reason}")
            self._count_event("history")
            self._dead_letter(error, body, "history")
            return
        EVENTS["history"].inc(len(items))  # one upstream event per history idea
        if isinstance(envelope.get("profile"), dict):
            self.on_profile(envelope["profile"])
        received = time.time()
        received_at = datetime.fromtimestamp(received, timezone.utc)
        records = []
        for idea, text in items:
            self.counters.add("received")
            try:
                if not isinstance(idea, dict):
                    raise ConversionError("not_an_object", f"history item is {type(idea).__name__}, not an object")
                records.append(idea_record(idea, text, self.zone, self.publisher.metadata("history", True, received_at)))
            except ConversionError as exc:
                self._dead_letter(exc, text.encode("utf-8"), "history")
        unseen = sum((r["idea_id"], r["last_update_text"]) not in self.window for r in records)
        if reconnect and len(items) >= self.settings.history_limit and records and unseen == len(records):
            self.counters.add("gaps")
            self.publisher.gap("hti.ideas", f"every idea of a full history page ({len(items)}) was new: "
                               "more may have been missed while disconnected", page_size=len(items),
                               history_limit=self.settings.history_limit)
        for record in records:
            self._publish(record, received)
        event(log, logging.INFO, "HTI history fetched", ideas=len(items), new=unseen, reconnect=reconnect)

    def _publish(self, record: dict, received: float) -> None:
        idea_id, last_update_text = record["idea_id"], record["last_update_text"]
        key = (idea_id, last_update_text)
        if key in self.window:
            self.window.add(key)  # refresh: keep it while it keeps coming back
            DUPLICATES.inc()
            self.counters.add("duplicates")
            return
        try:
            value = self.publisher.serialize(HTI_IDEAS, record)
        except (ValueError, TypeError, OverflowError) as exc:
            self._dead_letter(exc, record["upstream_json"].encode("utf-8"), record["metadata"]["upstream_event"],
                              stage="serialize", reason="serialize_failed")
            return
        # Remembered when queued, not when acked: with message.timeout.ms=0 librdkafka retries a queued record
        # until it is delivered, short of a fatal error, which ends the process (so nothing is skipped wrongly).
        self.window.add(key)
        hook, counters = self.on_idea_ack, self.counters

        def acked(err, _msg):
            if err is None:
                now = time.time()
                LATENCY.observe(now - received)
                counters.add_published()
                if hook is not None:
                    hook(idea_id, last_update_text, received, now)

        self.in_produce = True
        try:
            self.publisher.publish_bytes(HTI_IDEAS, idea_id, value, acked)
        finally:
            self.in_produce = False

    def _dead_letter(self, exc: BaseException, payload: bytes, upstream_event: str, *,
                     stage: str | None = None, reason: str | None = None) -> None:
        reason = reason or getattr(exc, "reason", "invalid")
        stage = stage or ("parse" if reason in PARSE_REASONS else "convert")
        self.counters.add("dead_letters")
        self.publisher.dead_letter(stage=stage, reason=reason, error=exc, payload=payload[:MAX_DLQ_PAYLOAD],
                                   encoding="text", upstream_event=upstream_event, target_topic=HTI_IDEAS)
