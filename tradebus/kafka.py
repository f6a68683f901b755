"""The Kafka clients every process uses: an idempotent producer with
bounded memory, and consumer settings for manual commits."""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from confluent_kafka import KafkaError, KafkaException, Producer

from tradebus import metrics
from tradebus.config import KafkaSettings
from tradebus.observability import RepeatThrottle
from tradebus.redaction import redact

log = logging.getLogger(__name__)

# librdkafka's own log lines (connection failures, session timeouts) go through
# Python logging, so they are JSON and redacted like ours, not raw stderr.
CLIENT_LOG = logging.getLogger("librdkafka")


def _not_a_repeat_of_error_cb(record: logging.LogRecord) -> bool:
    # Connection failures (facility FAIL) also reach error_cb, which logs them
    # once per 10 s; librdkafka's own copy of each would double them.
    return not (isinstance(record.args, tuple) and record.args and record.args[0] == "FAIL")


CLIENT_LOG.addFilter(_not_a_repeat_of_error_cb)

# produce() serves delivery reports itself every this many records.
POLL_EVERY = 64

AckCallback = Callable[[KafkaError | None, object], None]


class UnsentRecordsError(RuntimeError):
    """flush() ended with records still unacknowledged."""


class IntakeStopped(RuntimeError):
    """Stop was requested while produce() waited for queue space: the record
    was not queued, and the upstream must deliver it again (replay/backfill)."""


class RecordTooLarge(ValueError):
    """The record exceeds the producer's message.max.bytes; it was not queued."""


class FatalProducerError(RuntimeError):
    """librdkafka raised a fatal error (e.g. idempotence sequence broken, or fenced)."""


def producer_conf(settings: KafkaSettings, client_id: str, **overrides) -> dict:
    conf = {
        **settings.client_conf(),
        "client.id": client_id,
        # Idempotence: no duplicates or reordering from retries, acks=all.
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": settings.compression,
        "linger.ms": settings.linger_ms,
        # The queue is the only buffer: when it is full, produce() waits
        # (backpressure) instead of growing memory.
        "queue.buffering.max.messages": settings.queue_max_messages,
        "queue.buffering.max.kbytes": settings.queue_max_kbytes,
        "message.timeout.ms": settings.message_timeout_ms,
        "error_cb": _log_client_error,
        "logger": CLIENT_LOG,
    }
    conf.update(overrides)
    return conf


_client_errors = RepeatThrottle(interval_s=10.0)


def _log_client_error(err: KafkaError) -> None:
    # Transport errors during a broker restart are normal; librdkafka retries.
    # Fatal errors are always logged; repeats of the others once per 10 s.
    suffix = "" if err.fatal() else _client_errors.suffix(err.code())
    if suffix is None:
        return
    log.log(logging.ERROR if err.fatal() else logging.WARNING, "kafka client: %s%s", redact(str(err)), suffix)


class PipelineProducer:
    """Idempotent producer: counts delivery reports, applies backpressure,
    and refuses to pretend a flush succeeded when records are left."""

    def __init__(self, settings: KafkaSettings, client_id: str, *, stop: threading.Event | None = None, **overrides):
        self._producer = Producer(producer_conf(settings, client_id, **overrides))
        self._stop = stop
        self.acked = 0
        self.failed = 0
        self.fatal_error: KafkaError | None = None
        self._last_ack_monotonic = time.monotonic()
        self._produced_counters: dict[str, object] = {}  # label lookups are not free per ack
        self._unpolled = 0  # produce() calls since the last poll(0) it made

    def produce(self, topic: str, key: str | bytes | None, value: bytes, on_ack: AckCallback | None = None,
                headers: list | None = None) -> None:
        """Queue one record; waits for space when the queue is full."""

        def report(err, msg):
            if err is None:
                self.acked += 1
                self._last_ack_monotonic = time.monotonic()
                counter = self._produced_counters.get(topic)
                if counter is None:
                    counter = self._produced_counters[topic] = metrics.PRODUCED.labels(topic=topic)
                counter.inc()
            else:
                self.failed += 1
                metrics.DELIVERY_FAILED.labels(topic=msg.topic()).inc()
                if err.fatal():
                    self.fatal_error = err
                log.error("delivery failed for a record on %s: %s", msg.topic(), redact(str(err)))
            if on_ack is not None:
                on_ack(err, msg)

        while True:
            try:
                self._producer.produce(topic, value=value, key=key, on_delivery=report, headers=headers)
                break
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                if isinstance(err, KafkaError) and err.code() == KafkaError.MSG_SIZE_TOO_LARGE:
                    raise RecordTooLarge(f"{len(value)} bytes is over the producer's message.max.bytes") from None
                raise
            except BufferError:
                if self._stop is not None and self._stop.is_set():
                    raise IntakeStopped("stop requested while the producer queue was full") from None
                metrics.BACKPRESSURE_WAITS.inc()
                self._producer.poll(0.05)
        # Serving reports costs a GIL round trip per call; processes have their
        # own loop polling for timely acks, this only keeps reports from piling up.
        self._unpolled += 1
        if self._unpolled >= POLL_EVERY:
            self._unpolled = 0
            self._producer.poll(0)
        if self.fatal_error is not None:
            raise FatalProducerError(redact(str(self.fatal_error)))

    def poll(self, timeout: float = 0) -> int:
        served = self._producer.poll(timeout)
        metrics.PRODUCER_QUEUE.set(len(self._producer))
        return served

    def pending(self) -> int:
        """Records not yet acknowledged (reports already due are served first:
        librdkafka counts unserved reports and log events as queued)."""
        self._producer.poll(0)
        return len(self._producer)

    def flush(self, timeout: float) -> None:
        """Wait for every queued record; raise if any is left unacknowledged."""
        remaining = self._producer.flush(timeout)
        metrics.PRODUCER_QUEUE.set(remaining)
        if remaining:
            raise UnsentRecordsError(f"{remaining} records still unacknowledged after {timeout:.0f}s flush")
        if self.fatal_error is not None:
            raise FatalProducerError(redact(str(self.fatal_error)))

    def kafka_reachable(self, timeout: float = 2.0) -> bool:
        """For /readyz: can we fetch cluster metadata right now?"""
        try:
            self._producer.list_topics(timeout=timeout)
            return True
        except KafkaException:
            return False

    @property
    def client(self) -> Producer:
        return self._producer


def consumer_conf(settings: KafkaSettings, group_id: str, client_id: str, **overrides) -> dict:
    conf = {
        **settings.client_conf(),
        "group.id": group_id,
        "client.id": client_id,
        "enable.auto.commit": False,  # offsets are committed after the work they cover
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "partition.assignment.strategy": "cooperative-sticky",
        "error_cb": _log_client_error,
        "logger": CLIENT_LOG,
    }
    conf.update(overrides)
    return conf
