"""Poison records a worker cannot process go to ``tradebus.dlq.v1`` whole,
with the reason, so their partition moves on. This module only builds the
record; the worker produces it through its own producer (inside its
transaction, or before its offset commit), so a dead letter is never lost
and never written twice for one committed offset."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from confluent_kafka import Message
from confluent_kafka.schema_registry.error import SchemaRegistryError

from tradebus import metrics
from tradebus.config import CommonSettings
from tradebus.redaction import redact
from tradebus.serde import AvroRecordSerializer, registry_client
from tradebus.topics import DLQ, TopicNames

log = logging.getLogger(__name__)
MAX_REASON = 1000  # some decoder errors quote whole schemas


def is_poison(exc: BaseException) -> bool:
    """Does this decoding error belong to the record (dead-letter it) or to
    the moment (registry unreachable or failing: retry, never dead-letter)?"""
    if isinstance(exc, SchemaRegistryError):
        return 400 <= (exc.http_status_code or 0) < 500  # e.g. 404: unknown schema id
    if isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in ("httpx", "httpcore", "requests"):
        return False
    return isinstance(exc, Exception)


class DeadLetters:
    """Encodes DeadLetter records for one worker; registers the schema at start."""

    def __init__(self, common: CommonSettings, worker: str, serializer: AvroRecordSerializer | None = None):
        names = TopicNames(common.topic_prefix)
        self.worker = worker
        self.instance = common.instance_id
        self.topic = names(DLQ)
        self.key = f"{worker}/{common.instance_id}".encode()
        self._serialize = serializer or AvroRecordSerializer.registered(
            registry_client(common.kafka), names.value_subject(DLQ), DLQ.value_schema
        )

    def encode(self, msg: Message, *, stage: str, reason: str, error: BaseException | None,
               target_topic: str | None = None) -> bytes:
        """The DeadLetter value for a consumed record; counts and logs it."""
        metrics.DLQ.labels(source=self.worker, reason=reason).inc()
        metrics.WORKER_ERRORS.labels(worker=self.worker, reason=reason).inc()
        error_text = redact(f"{type(error).__name__}: {error}")[:MAX_REASON] if error is not None else reason
        log.warning("%s: dead-lettered %s[%d]@%d at stage %s: %s", self.worker, msg.topic(), msg.partition(),
                    msg.offset(), stage, error_text)
        return self._serialize({
            "source": self.worker,
            "producer_instance": self.instance,
            "received_at": datetime.now(timezone.utc),
            "stage": stage,
            "reason": error_text,
            "error_type": type(error).__name__ if error is not None else reason,
            "upstream_event": None,
            "payload_encoding": "avro",
            "payload": msg.value() or b"",
            "target_topic": target_topic,
            "details": {
                "reason_code": reason,
                "topic": msg.topic(),
                "partition": str(msg.partition()),
                "offset": str(msg.offset()),
                "key": (msg.key() or b"").decode("utf-8", "replace"),
            },
        })
