"""What a producer process publishes through: typed data topics, the status
topic and the dead-letter topic, over one idempotent producer. Both
producers share this; neither copies it."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from typing import Iterable

from tradebus import metrics
from tradebus.config import CommonSettings
import hashlib

from tradebus.kafka import AckCallback, PipelineProducer, RecordTooLarge
from tradebus.redaction import redact
from tradebus.serde import AvroRecordSerializer, registry_client
from tradebus.topics import DLQ, STATUS, Topic, TopicNames

log = logging.getLogger(__name__)


# What of an oversize record the DLQ keeps: below Kafka's default 1 MB limit.
DLQ_PAYLOAD_LIMIT = 900 * 1024


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Publisher:
    """Registers every schema it will write at construction (fail fast), then
    serializes and produces records; status and DLQ records ride along."""

    def __init__(self, common: CommonSettings, source: str, data_topics: Iterable[Topic],
                 stop: threading.Event | None = None, producer: PipelineProducer | None = None):
        self.source = source
        self.instance = common.instance_id
        self.names = TopicNames(common.topic_prefix)
        self.producer = producer or PipelineProducer(common.kafka, f"tradebus-{source}-{common.instance_id}", stop=stop)
        client = registry_client(common.kafka)
        self._serializers: dict[str, AvroRecordSerializer] = {}
        for topic in [*data_topics, STATUS, DLQ]:
            self._serializers[topic.name] = AvroRecordSerializer.registered(
                client, self.names.value_subject(topic), topic.value_schema
            )
        self._status_key = f"{source}/{self.instance}"

    def metadata(self, upstream_event: str, replay: bool = False, received_at: datetime | None = None) -> dict:
        return {
            "source": self.source,
            "producer_instance": self.instance,
            "received_at": received_at or utcnow(),
            "upstream_event": upstream_event,
            "replay": replay,
        }

    def serialize(self, topic: Topic, record: dict) -> bytes:
        return self._serializers[topic.name](record)

    def publish(self, topic: Topic, key: str, record: dict, on_ack: AckCallback | None = None) -> None:
        self.publish_bytes(topic, key, self.serialize(topic, record), on_ack)

    def publish_bytes(self, topic: Topic, key: str, value: bytes, on_ack: AckCallback | None = None) -> None:
        try:
            self.producer.produce(self.names(topic), key.encode(), value, on_ack)
        except RecordTooLarge as exc:
            if topic is DLQ:
                raise
            # Kafka will not take it: keep as much as a record can hold, with the
            # full size and a digest, in the DLQ; the flow goes on.
            self.dead_letter(stage="deliver", reason="too_large", error=exc, payload=value[:DLQ_PAYLOAD_LIMIT],
                             encoding="avro", target_topic=topic,
                             details={"key": key, "size": len(value), "sha256": hashlib.sha256(value).hexdigest(),
                                      "truncated_to": min(len(value), DLQ_PAYLOAD_LIMIT)})

    def status(self, kind: str, message: str | None = None, *, event_type: str | None = None,
               upstream_time: datetime | None = None, details: dict | None = None, payload: bytes | None = None) -> None:
        record = {
            "source": self.source,
            "producer_instance": self.instance,
            "emitted_at": utcnow(),
            "kind": kind,
            "message": redact(message) if message else message,
            "event_type": event_type,
            "upstream_time": upstream_time,
            "details": {k: redact(str(v)) for k, v in (details or {}).items()},
            "upstream_payload": payload,
        }
        self.publish(STATUS, self._status_key, record)

    def gap(self, kind: str, message: str, **details) -> None:
        """A possible gap upstream: counted, logged and put on the status topic."""
        metrics.GAPS.labels(source=self.source, kind=kind).inc()
        log.warning("possible gap in %s: %s", kind, message)
        self.status("gap", message, event_type=kind, details=details)

    def dead_letter(self, *, stage: str, reason: str, error: BaseException | None, payload: bytes,
                    encoding: str, upstream_event: str | None = None, target_topic: Topic | None = None,
                    details: dict | None = None) -> None:
        """Keep data we could not convert, with the reason; the flow goes on."""
        metrics.DLQ.labels(source=self.source, reason=reason).inc()
        error_text = redact(f"{type(error).__name__}: {error}") if error else reason
        log.warning("dead-lettered %s data at stage %s: %s", self.source, stage, error_text)
        record = {
            "source": self.source,
            "producer_instance": self.instance,
            "received_at": utcnow(),
            "stage": stage,
            "reason": error_text if error else reason,
            "error_type": type(error).__name__ if error else reason,
            "upstream_event": upstream_event,
            "payload_encoding": encoding,
            "payload": payload,
            "target_topic": self.names(target_topic) if target_topic else None,
            "details": {"reason_code": reason, **{k: redact(str(v)) for k, v in (details or {}).items()}},
        }
        self.publish(DLQ, self._status_key, record)

    def flush(self, timeout: float) -> None:
        self.producer.flush(timeout)
