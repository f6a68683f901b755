"""The consumer loop every worker shares.

A worker subclasses :class:`BatchWorker` and implements ``process(batch)``:
do the work for a list of records *and* make it durable *and* commit the
offsets (a database commit then :meth:`BatchWorker.commit_offsets`, or a Kafka
transaction with ``send_offsets_to_transaction``). The loop only decides when
a batch is complete and what happens around it:

* a batch is handed over at ``batch_size`` records or ``flush_ms`` after its
  first record, whichever comes first;
* before partitions are revoked (rebalance, ``close()``), the pending batch is
  processed and committed, so the next owner starts exactly where we stopped;
  when partitions are *lost* (session timeout) it is discarded instead, since
  committing on behalf of a group we no longer belong to would fail anyway;
* SIGTERM/SIGINT (the ``stop`` event) stops intake; the current batch is
  finished and committed, the consumer closed, ``teardown()`` runs and
  ``run()`` returns 0;
* ``/metrics``, ``/healthz`` and ``/readyz`` are served on the HTTP port, the
  consumer-lag gauge is refreshed every ``lag_interval_s``, ``tick()`` is
  called on every turn of the loop (a worker's own timers).

Offsets are never committed automatically (``enable.auto.commit`` is off in
:func:`tradebus.kafka.consumer_conf`); an exception from ``process`` ends
``run()`` without committing, so the batch is consumed again after a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Iterable

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from consumers.common.settings import WorkerSettings
from tradebus import metrics
from tradebus.config import CommonSettings
from tradebus.kafka import consumer_conf
from tradebus.observability import HealthState, RepeatThrottle, event, start_observability
from tradebus.redaction import redact

log = logging.getLogger(__name__)

# Longest single poll: the loop must notice the stop flag and its timers promptly.
MAX_POLL_S = 0.5


def next_offsets(batch: Iterable[Message]) -> list[TopicPartition]:
    """The offsets to commit after a batch: last offset + 1 per partition."""
    last: dict[tuple[str, int], int] = {}
    for msg in batch:
        key = (msg.topic(), msg.partition())
        if msg.offset() >= last.get(key, -1):
            last[key] = msg.offset()
    return [TopicPartition(topic, partition, offset + 1) for (topic, partition), offset in last.items()]


def first_offsets(batch: Iterable[Message]) -> list[TopicPartition]:
    """Where each partition of a batch started: seek there to consume it again."""
    first: dict[tuple[str, int], int] = {}
    for msg in batch:
        key = (msg.topic(), msg.partition())
        if key not in first or msg.offset() < first[key]:
            first[key] = msg.offset()
    return [TopicPartition(topic, partition, offset) for (topic, partition), offset in first.items()]


class BatchWorker:
    """Subclass, set ``topics`` (real names) and implement ``process``."""

    def __init__(self, common: CommonSettings, settings: WorkerSettings, topics: list[str], *,
                 stop: threading.Event | None = None, consumer_overrides: dict | None = None):
        self.common = common
        self.settings = settings
        self.topics = topics
        self.stop = stop or threading.Event()
        self.consumer_overrides = dict(consumer_overrides or {})
        self.consumer: Consumer | None = None
        self.health = HealthState(self.readiness_checks())
        self.kafka_ok = False  # refreshed with the lag gauge; read by /readyz
        self.started = False  # setup() done and subscribed
        self._pending: list[Message] = []
        self._consumer_closed = False
        self._batch_deadline = 0.0
        self._next_lag_refresh = 0.0
        self._error_throttle = RepeatThrottle(interval_s=10.0)  # a broker restart repeats the same error

    # ---------------------------------------------------------------- hooks
    def setup(self) -> None:
        """Before subscribing: register schemas, init transactions, migrate."""

    def process(self, batch: list[Message]) -> None:
        """Do the work for ``batch``, make it durable and commit its offsets."""
        raise NotImplementedError

    def discard(self, batch: list[Message]) -> None:
        """The pending batch's partitions were lost: drop (abort) its work."""

    def on_assigned(self, partitions: list[TopicPartition]) -> None:
        """Partitions were added (incrementally, with cooperative-sticky)."""

    def on_revoked(self, partitions: list[TopicPartition]) -> None:
        """Partitions are about to go; the pending batch is already committed."""

    def on_lost(self, partitions: list[TopicPartition]) -> None:
        """Partitions were lost without a clean revoke."""

    def tick(self) -> None:
        """Called on every turn of the loop (at least every MAX_POLL_S)."""

    def teardown(self) -> None:
        """After the consumer is closed: flush producers, close connections."""

    def readiness_checks(self) -> dict[str, Callable[[], bool]]:
        """/readyz checks; extend in subclasses (call super())."""
        return {"started": lambda: self.started, "kafka": lambda: self.kafka_ok}

    # ------------------------------------------------------------- helpers
    @property
    def client_id(self) -> str:
        return f"tradebus-{self.settings.name}-{self.common.instance_id}"

    def commit_offsets(self, batch: list[Message]) -> None:
        """Synchronous commit of explicit offsets (for non-transactional workers)."""
        if batch:
            self.consumer.commit(offsets=next_offsets(batch), asynchronous=False)

    def rewind(self, batch: list[Message]) -> None:
        """Seek back to the start of ``batch`` so it is consumed again."""
        for tp in first_offsets(batch):
            try:
                self.consumer.seek(tp)
            except KafkaException as exc:  # partition no longer assigned: its next owner resumes it
                log.warning("cannot rewind %s[%d]: %s", tp.topic, tp.partition, redact(str(exc)))

    def count_consumed(self, batch: list[Message]) -> None:
        per_topic: dict[str, int] = {}
        for msg in batch:
            per_topic[msg.topic()] = per_topic.get(msg.topic(), 0) + 1
        for topic, n in per_topic.items():
            metrics.CONSUMED.labels(worker=self.settings.name, topic=topic).inc(n)

    # ----------------------------------------------------------------- loop
    def run(self) -> int:
        server = start_observability(self.health, self.common.http_port)
        try:
            self.setup()
            overrides = {"session.timeout.ms": self.settings.session_timeout_ms,
                         "heartbeat.interval.ms": min(3000, self.settings.session_timeout_ms // 3),
                         **self.consumer_overrides}
            self.consumer = Consumer(consumer_conf(self.common.kafka, self.settings.group, self.client_id, **overrides))
            self.consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke,
                                    on_lost=self._on_lost)
            self.started = True
            event(log, logging.INFO, f"{self.settings.name} worker started", group=self.settings.group,
                  topics=",".join(self.topics), batch_size=self.settings.batch_size, flush_ms=self.settings.flush_ms)
            while not self.stop.is_set():
                self.health.beat()
                self._poll_once()
                if self._pending and (len(self._pending) >= self.settings.batch_size
                                      or time.monotonic() >= self._batch_deadline):
                    self._flush()
                self.tick()
                if time.monotonic() >= self._next_lag_refresh:
                    self.refresh_lag()
            self._flush()  # SIGTERM: finish and commit the current batch
            event(log, logging.INFO, f"{self.settings.name} worker stopping", group=self.settings.group)
            self._close_consumer()
        except BaseException:
            self._pending = []  # never commit after a failure: the batch is consumed again
            self._close_consumer()
            raise
        finally:
            try:
                self.teardown()
            finally:
                if server is not None:
                    server.stop()
        return 0

    def _poll_once(self) -> None:
        """Wait for one record, at most until the batch deadline (or MAX_POLL_S),
        then take whatever else is already fetched without waiting.

        ``consume(n, wait)`` would block until n records arrived or the wait ran
        out, so at low rates a record waited up to the flush interval even when
        it was alone; ``poll`` returns as soon as one record is there. The first
        record joins the batch before the second call, so a revoke served inside
        that call commits it with the rest."""
        if self._pending:
            wait = min(MAX_POLL_S, max(0.0, self._batch_deadline - time.monotonic()))
        else:
            wait = MAX_POLL_S
        first = self.consumer.poll(wait)
        if first is None:
            return
        self._accept(first)
        room = self.settings.batch_size - len(self._pending)
        if room > 0:
            for msg in self.consumer.consume(room, 0):
                self._accept(msg)

    def _accept(self, msg: Message) -> None:
        err = msg.error()
        if err is not None:
            self._client_error(err)
            return
        if not self._pending:
            self._batch_deadline = time.monotonic() + self.settings.flush_ms / 1000.0
        self._pending.append(msg)

    def _client_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._PARTITION_EOF:
            return
        if err.fatal():
            raise KafkaException(err)
        metrics.WORKER_ERRORS.labels(worker=self.settings.name, reason="consumer").inc()
        suffix = self._error_throttle.suffix(err.code())
        if suffix is not None:
            log.warning("%s consumer: %s%s", self.settings.name, redact(str(err)), suffix)

    def _flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        started = time.perf_counter()
        self.process(batch)
        metrics.WORKER_BATCH_SECONDS.labels(worker=self.settings.name).observe(time.perf_counter() - started)
        self.count_consumed(batch)

    def _close_consumer(self) -> None:
        if self.consumer is not None and not self._consumer_closed:
            self._consumer_closed = True
            try:
                self.consumer.close()  # leaves the group; the revoke callback runs first
            except (KafkaException, RuntimeError) as exc:
                log.warning("closing the %s consumer: %s", self.settings.name, redact(str(exc)))

    # ------------------------------------------------------------ rebalance
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        event(log, logging.INFO, "partitions assigned", worker=self.settings.name, partitions=_describe(partitions))
        self.on_assigned(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        event(log, logging.INFO, "partitions revoked", worker=self.settings.name, partitions=_describe(partitions))
        self._flush()  # the next owner starts after what we did
        self.on_revoked(partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.warning("%s: partitions lost (%s); discarding the pending batch", self.settings.name, _describe(partitions))
        batch, self._pending = self._pending, []
        if batch:
            self.discard(batch)
        self.on_lost(partitions)

    # ------------------------------------------------------------------ lag
    def refresh_lag(self) -> None:
        """Set the lag gauge per topic: high watermark minus position, summed
        over this process's partitions (sum over processes for the group)."""
        self._next_lag_refresh = time.monotonic() + self.settings.lag_interval_s
        try:
            assigned = self.consumer.assignment()
            positions = self.consumer.position(assigned) if assigned else []
            lag = {topic: 0 for topic in self.topics}
            for tp in positions:
                low, high = self.consumer.get_watermark_offsets(tp, cached=True)
                if high < 0:  # nothing fetched yet: ask the broker
                    low, high = self.consumer.get_watermark_offsets(tp, timeout=2.0)
                position = tp.offset if tp.offset >= 0 else low
                lag[tp.topic] = lag.get(tp.topic, 0) + max(0, high - position)
            if not assigned:
                self.consumer.list_topics(timeout=2.0)  # still tells us whether Kafka answers
            self.kafka_ok = True
        except KafkaException as exc:
            self.kafka_ok = False
            log.warning("%s: cannot read consumer lag: %s", self.settings.name, redact(str(exc)))
            return
        for topic, value in lag.items():
            metrics.CONSUMER_LAG.labels(group=self.settings.group, topic=topic).set(value)


def _describe(partitions: list[TopicPartition]) -> str:
    return ",".join(f"{tp.topic}[{tp.partition}]" for tp in partitions)
