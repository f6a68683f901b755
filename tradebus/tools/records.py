"""Reading topics back for people: decode through the registry and render
records as JSON-safe values."""

from __future__ import annotations

import base64
import time
import uuid
from datetime import datetime
from typing import Iterator

from confluent_kafka import Consumer, TopicPartition

from tradebus.config import CommonSettings
from tradebus.serde import AvroRecordDeserializer, registry_client


def jsonable(value):
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def reader(common: CommonSettings, **overrides) -> Consumer:
    """A throwaway consumer: its own group, never commits."""
    conf = {
        **common.kafka.client_conf(),
        "group.id": f"tradebus-reader-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "log_level": 2,  # a viewer: broker connection noise on stderr would garble the output
    }
    conf.update(overrides)
    return Consumer(conf)


def partitions(consumer: Consumer, topic: str, timeout: float = 10.0) -> list[int]:
    meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
    if meta is None or meta.error is not None:
        raise SystemExit(f"topic {topic} does not exist (run `tradebus topics create`)")
    return sorted(meta.partitions)


def watermarks(consumer: Consumer, topic: str) -> dict[int, tuple[int, int]]:
    return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions(consumer, topic)}


def read_records(common: CommonSettings, topic: str, *, from_beginning: bool, last: int = 0,
                 follow: bool = True, no_follow_timeout: float = 30.0) -> Iterator[dict]:
    """Yield decoded records with their coordinates. Without follow, stops
    once every partition's current end is reached."""
    consumer = reader(common)
    decode = AvroRecordDeserializer(registry_client(common.kafka))
    marks = watermarks(consumer, topic)
    starts = {p: (low if from_beginning else max(low, high - last)) for p, (low, high) in marks.items()}
    consumer.assign([TopicPartition(topic, p, offset) for p, offset in starts.items()])
    # Partitions that still hold records we have not read (for --no-follow).
    unread = {p for p, (low, high) in marks.items() if high > starts[p]}
    deadline = time.monotonic() + no_follow_timeout
    try:
        while follow or unread:
            msg = consumer.poll(1.0)
            if msg is None:
                if not follow:
                    # Done when every partition's position reached its end mark
                    # (transaction markers take offsets but are never delivered).
                    for tp in consumer.position([TopicPartition(topic, p) for p in unread]):
                        if tp.offset >= marks[tp.partition][1]:
                            unread.discard(tp.partition)
                    if time.monotonic() > deadline:
                        return
                continue
            if msg.error():
                continue
            try:
                value = decode(msg.value()) if msg.value() is not None else None
            except Exception as exc:  # show undecodable records rather than stopping
                value = {"undecodable": str(exc)}
            yield {
                "topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(),
                "key": msg.key().decode(errors="replace") if msg.key() else None,
                "timestamp_ms": msg.timestamp()[1], "value": value,
            }
            if msg.offset() + 1 >= marks[msg.partition()][1]:
                unread.discard(msg.partition())
    finally:
        consumer.close()
