"""The alerts worker: the shared consumer loop (consumers.common.BatchWorker)
reading the unique topics and/or tradebus.status.v1 (only those the rules
need), evaluating rules, suppressing keys within their cooldown, delivering
through the sinks off the loop (dispatch.py) and writing every fired alert to
tradebus.alerts.v1 with its delivery status.

Offsets: a record's offset is committed only after every alert it fired was
delivered (or failed for good) and written to Kafka (offsets.py). A crash in
between replays the record: at-least-once, so an alert may be delivered
twice after a crash (cooldowns are in memory and start empty).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from confluent_kafka import KafkaException, Message, TopicPartition

from consumers.alerts.cooldown import Cooldown
from consumers.alerts.dispatch import Dispatcher, Job
from consumers.alerts.evaluate import Candidate, EvaluationError, Evaluator
from consumers.alerts.offsets import OffsetTracker
from consumers.alerts.rules import RuleSet
from consumers.alerts.sinks import Sink
from consumers.common import BatchWorker, DeadLetters, WorkerSettings, is_poison
from tradebus import metrics
from tradebus.config import CommonSettings, Env
from tradebus.kafka import PipelineProducer, UnsentRecordsError
from tradebus.observability import event
from tradebus.redaction import redact
from tradebus.serde import AvroRecordDeserializer, AvroRecordSerializer, registry_client
from tradebus.topics import ALERTS, STATUS, TopicNames

log = logging.getLogger(__name__)

WORKER = "alerts"
# One record per batch: the loop's poll returns as soon as a record is there,
# which keeps emit-to-alert latency low; an alert worker's input is small.
DEFAULT_BATCH_SIZE = 1
DEFAULT_FLUSH_MS = 5
DEFAULT_HTTP_PORT = 9403


@dataclass(frozen=True)
class AlertsOptions:
    timer_s: float = 1.0  # silence checks
    commit_s: float = 1.0
    max_in_flight: int = 2000  # alerts being delivered; above it the loop waits (backpressure)

    @classmethod
    def from_env(cls, env: Env) -> "AlertsOptions":
        return cls(
            timer_s=env.float("TRADEBUS_ALERTS_TIMER_SECONDS", cls.timer_s, min=0.05, max=60.0),
            commit_s=env.float("TRADEBUS_ALERTS_COMMIT_SECONDS", cls.commit_s, min=0.05, max=60.0),
            max_in_flight=env.int("TRADEBUS_ALERTS_MAX_IN_FLIGHT", cls.max_in_flight, min=1, max=1_000_000),
        )


class AlertsWorker(BatchWorker):
    def __init__(self, common: CommonSettings, settings: WorkerSettings, options: AlertsOptions, ruleset: RuleSet,
                 sinks: dict[str, Sink], *, stop: threading.Event | None = None, evaluator: Evaluator | None = None):
        self.names = TopicNames(common.topic_prefix)
        self.evaluator = evaluator or Evaluator(ruleset)
        # No enabled rule: still a member of the group on the status topic, idle.
        inputs = self.evaluator.input_topics() or [STATUS]
        self.inputs = {self.names(t): t for t in inputs}
        super().__init__(common, settings, list(self.inputs), stop=stop)
        self.ruleset = ruleset
        self.options = options
        self.sinks = sinks
        self.cooldown = Cooldown()
        self.tracker = OffsetTracker()
        self.dispatcher: Dispatcher | None = None
        self.producer: PipelineProducer | None = None
        self.alerts_topic = self.names(ALERTS)
        self.fired = 0
        self.suppressed = 0
        self.written = 0
        self._next_timer = 0.0
        self._next_commit = 0.0
        self._counters: dict[tuple[str, str, str], object] = {}

    # ----------------------------------------------------------------- setup
    def setup(self) -> None:
        client = registry_client(self.common.kafka)
        self.serialize_alert = AvroRecordSerializer.registered(client, self.names.value_subject(ALERTS), ALERTS.value_schema)
        self.dead_letters = DeadLetters(self.common, WORKER)
        self.deserializers = {name: AvroRecordDeserializer(client, t.value_schema) for name, t in self.inputs.items()}
        self.producer = PipelineProducer(self.common.kafka, self.client_id, stop=self.stop)
        self.dispatcher = Dispatcher(self.sinks)
        if not self.ruleset.rules:
            log.warning("alerts: no enabled rule in %s; the worker idles", self.ruleset.path)
        event(log, logging.INFO, "alert rules loaded", file=self.ruleset.path, rules=",".join(r.name for r in self.ruleset.rules),
              sinks=",".join(self.sinks))

    # ------------------------------------------------------------- records
    def process(self, batch: list[Message]) -> None:
        for msg in batch:
            self._handle(msg)
            # Marked consumed only once handled: if _handle raised (registry
            # down), this offset is never committed and the record comes back.
            self.tracker.consumed(msg.topic(), msg.partition(), msg.offset())
        self._backpressure()

    def _handle(self, msg: Message) -> None:
        name, partition = msg.topic(), msg.partition()
        origin = (name, partition, msg.offset())
        try:
            record = self.deserializers[name](msg.value())
        except Exception as exc:
            if not is_poison(exc):  # registry or network trouble: stop uncommitted, retry after a restart
                raise
            self._dead_letter(msg, origin, "decode", "undecodable", exc)
            return
        key = msg.key().decode("utf-8", "replace") if msg.key() else None
        try:
            candidates = self.evaluator.on_record(self.inputs[name], record, topic_name=name, key=key, partition=partition)
        except EvaluationError as exc:
            self._dead_letter(msg, origin, "evaluate", "bad_value", exc)
            return
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:  # unexpected: kept and counted, never a crash loop
            self._dead_letter(msg, origin, "evaluate", "evaluation_failed", exc)
            return
        for candidate in candidates:
            self._fire(candidate, origin)

    def _dead_letter(self, msg: Message, origin, stage: str, reason: str, exc: BaseException) -> None:
        value = self.dead_letters.encode(msg, stage=stage, reason=reason, error=exc)
        self.tracker.add_output(*origin)
        self.producer.produce(self.dead_letters.topic, self.dead_letters.key, value,
                              on_ack=functools.partial(self._acked, origin))

    def _fire(self, c: Candidate, origin: tuple[str, int, int] | None) -> None:
        fire, suppressed_before = self.cooldown.admit(c.key, c.rule.cooldown_seconds)
        if not fire:
            self.suppressed += 1
            metrics.ALERTS_SUPPRESSED.labels(rule=c.rule.name).inc()
            return
        details = dict(c.details)
        if suppressed_before:
            details["suppressed_since_last"] = str(suppressed_before)
        record = {
            "alert_id": uuid.uuid4().hex, "rule": c.rule.name, "alert_key": c.key, "severity": c.rule.severity,
            "title": c.title, "message": c.message, "fired_at": datetime.now(timezone.utc),
            "source_topic": c.source_topic, "source_key": c.source_key, "event_time": c.event_time,
            "deliveries": [], "details": details,
        }
        if origin is not None:
            self.tracker.add_output(*origin)
        self.fired += 1
        self.dispatcher.submit(Job(record, c.rule.sinks, origin))

    def _backpressure(self) -> None:
        while self.dispatcher.in_flight >= self.options.max_in_flight:
            self.health.beat()
            self._write_completed()
            self.producer.poll(0)
            self.dispatcher.wait(0.1)

    # --------------------------------------------------------------- timer
    def tick(self) -> None:
        now = time.monotonic()
        if now >= self._next_timer:
            self._next_timer = now + self.options.timer_s
            for candidate in self.evaluator.on_timer():
                self._fire(candidate, None)
        self._write_completed()
        self.producer.poll(0)
        if now >= self._next_commit:
            self._next_commit = now + self.options.commit_s
            self._commit()

    def _write_completed(self) -> None:
        for job in self.dispatcher.completed():
            record = job.finished_record()
            for d in record["deliveries"]:
                self._count(record["rule"], d["sink"], d["status"])
                if d["status"] != "delivered":
                    event(log, logging.WARNING, "alert delivery failed", rule=record["rule"], sink=d["sink"],
                          attempts=d["attempts"], error=d["error"] or "", alert_id=record["alert_id"])
            self.producer.produce(self.alerts_topic, record["alert_key"].encode(), self.serialize_alert(record),
                                  on_ack=functools.partial(self._acked, job.origin))

    def _count(self, rule: str, sink: str, status: str) -> None:
        counter = self._counters.get((rule, sink, status))
        if counter is None:  # labels() costs more than the increment; rules x sinks x 2 children at most
            counter = self._counters[(rule, sink, status)] = metrics.ALERTS.labels(rule=rule, sink=sink, status=status)
        counter.inc()

    def _acked(self, origin, err, msg) -> None:
        if err is not None:
            # Left pending: the source offset is not committed, the record is replayed after a restart.
            log.error("alerts: a record for %s was not written: %s", msg.topic(), redact(str(err)))
            return
        if msg.topic() == self.alerts_topic:
            self.written += 1
        if origin is not None:
            self.tracker.written(*origin)

    def _commit(self, partitions: set[tuple[str, int]] | None = None) -> None:
        offsets = self.tracker.committable(partitions)
        if not offsets:
            return
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
            self.tracker.committed(offsets)
        except KafkaException as exc:  # e.g. a rebalance in progress: the next commit covers it
            log.warning("alerts: offset commit failed: %s", redact(str(exc)))

    # ------------------------------------------------------------ rebalance
    def _settle(self, until: float, partitions: set[tuple[str, int]] | None) -> None:
        """Deliver and write what is in flight (for these partitions), bounded in time."""
        while time.monotonic() < until:
            waiting = self.tracker.pending(partitions) if partitions is not None else self.dispatcher.in_flight
            if not waiting:
                return
            self._write_completed()
            self.producer.poll(0.02)
            self.dispatcher.wait(0.05)

    def on_revoked(self, partitions: list[TopicPartition]) -> None:
        keys = {(tp.topic, tp.partition) for tp in partitions}
        self._settle(time.monotonic() + self.common.shutdown_timeout_s, keys)
        self._commit(keys)
        self._forget(keys)

    def on_lost(self, partitions: list[TopicPartition]) -> None:
        self._forget({(tp.topic, tp.partition) for tp in partitions})

    def _forget(self, keys: set[tuple[str, int]]) -> None:
        self.tracker.forget(keys)
        for name, topic in self.inputs.items():
            self.evaluator.forget_partitions(topic, {p for t, p in keys if t == name})

    def teardown(self) -> None:
        if self.dispatcher is None:
            return
        until = time.monotonic() + self.common.shutdown_timeout_s
        self._settle(until, None)  # timer alerts (no source offset) still in flight
        self._write_completed()
        try:
            self.producer.flush(max(1.0, until - time.monotonic()))
        except UnsentRecordsError as exc:
            log.error("alerts: %s", exc)
        self.dispatcher.close(wait=False)
        event(log, logging.INFO, "alerts worker stopped", fired=self.fired, suppressed=self.suppressed, written=self.written)
