"""The dedup worker's memory of identities it has already written, bounded by
a time window and a maximum number of entries, and its changelog.

State is kept per input partition. Every event with the same identity has the
same Kafka key (idea_id, order_id, account|symbol, ...) and so lands on the
same input partition: the owner of a partition is the only process that needs
that partition's identities, and a partition's state moves with it on a
rebalance.

Changelog (``tradebus.dedup-state.v1``, compacted): one record per
first-seen identity, written *in the same Kafka transaction* as the output
record and the input offsets, so the changelog always matches exactly what
the committed output holds. Key ``<kind>|<input partition>|<digest hex>``,
value the first-seen time in epoch milliseconds (ASCII digits); an evicted
entry gets a tombstone so compaction forgets it. Records for input partition
``p`` go to changelog partition ``p % changelog partitions``; a process
rebuilds the state of newly assigned partitions by reading those changelog
partitions from the start of the window up to their end.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from tradebus.config import KafkaSettings

log = logging.getLogger(__name__)

PartitionKey = tuple[str, int]  # (kind, input partition)


class DedupState:
    """Identity digests -> first-seen epoch ms, per input partition, oldest first."""

    def __init__(self, window_ms: int, max_entries: int):
        self.window_ms = window_ms
        self.max_entries = max_entries
        self.partitions: dict[PartitionKey, OrderedDict[bytes, int]] = {}
        self.size = 0  # kept by add/discard/evict; partitions dicts are only changed here

    def partition(self, key: PartitionKey) -> OrderedDict[bytes, int]:
        part = self.partitions.get(key)
        if part is None:
            part = self.partitions[key] = OrderedDict()
        return part

    def add(self, part: OrderedDict[bytes, int], digest: bytes, now_ms: int) -> None:
        part[digest] = now_ms
        self.size += 1

    def discard(self, part: OrderedDict[bytes, int], digest: bytes) -> None:
        if part.pop(digest, None) is not None:
            self.size -= 1

    def load(self, key: PartitionKey, entries: dict[bytes, int], now_ms: int) -> int:
        """Replace a partition's state with changelog entries inside the window."""
        self.drop([key])
        horizon = now_ms - self.window_ms
        part = self.partition(key)
        for digest, seen_ms in sorted(entries.items(), key=lambda item: item[1]):
            if seen_ms >= horizon:
                part[digest] = seen_ms
        self.size += len(part)
        return len(part)

    def drop(self, keys) -> None:
        """Forget partitions (revoked or lost): their next owner rebuilds them."""
        for key in keys:
            part = self.partitions.pop(key, None)
            if part is not None:
                self.size -= len(part)

    def evict(self, now_ms: int) -> list[tuple[PartitionKey, bytes]]:
        """Remove entries older than the window, then the oldest overall while
        above max_entries; returns what was removed (to tombstone)."""
        removed: list[tuple[PartitionKey, bytes]] = []
        horizon = now_ms - self.window_ms
        for key, part in self.partitions.items():
            while part:
                digest, seen_ms = next(iter(part.items()))
                if seen_ms >= horizon:
                    break
                part.popitem(last=False)
                removed.append((key, digest))
        self.size -= len(removed)
        while self.size > self.max_entries:
            key, part = min(((k, p) for k, p in self.partitions.items() if p), key=lambda kp: next(iter(kp[1].values())))
            digest, _ = part.popitem(last=False)
            removed.append((key, digest))
            self.size -= 1
        return removed


def changelog_key(kind: str, partition: int, digest: bytes) -> bytes:
    return f"{kind}|{partition}|{digest.hex()}".encode()


def parse_changelog_key(key: bytes) -> tuple[PartitionKey, bytes]:
    kind, partition, hex_digest = key.decode().split("|")
    return (kind, int(partition)), bytes.fromhex(hex_digest)


class ChangelogIncomplete(RuntimeError):
    """The changelog could not be read to its end in time."""


def read_changelog(kafka: KafkaSettings, topic: str, wanted: set[PartitionKey], changelog_partitions: int,
                   since_ms: int, timeout_s: float) -> dict[PartitionKey, dict[bytes, int]]:
    """Entries for ``wanted`` input partitions, from ``since_ms`` to the end.

    "The end" is the high watermark *including* transactions still open when
    we start, read with read_committed: we wait until each partition's
    position passes it, i.e. until every transaction that was in flight has
    been committed (its records count) or aborted (they do not). The caller
    must first make sure the committed input offsets are stable (an
    OffsetFetch under read_committed waits for pending transactional offset
    commits), so no transaction that will still commit is missed.
    """
    result: dict[PartitionKey, dict[bytes, int]] = {key: {} for key in wanted}
    sources = sorted({partition % changelog_partitions for _, partition in wanted})
    if not sources:
        return result
    base = {**kafka.client_conf(), "group.id": f"tradebus-dedup-loader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False, "enable.partition.eof": False}
    ends = _high_watermarks({**base, "isolation.level": "read_uncommitted"}, topic, sources)
    consumer = Consumer({**base, "isolation.level": "read_committed", "fetch.max.bytes": 16 * 1024 * 1024})
    try:
        starts = consumer.offsets_for_times([TopicPartition(topic, p, since_ms) for p in sources], timeout=timeout_s)
        todo = {}
        for tp in starts:
            start = tp.offset if tp.offset >= 0 else ends[tp.partition]  # -1: nothing that recent
            if start < ends[tp.partition]:
                todo[tp.partition] = TopicPartition(topic, tp.partition, start)
        if not todo:
            return result
        consumer.assign(list(todo.values()))
        deadline = time.monotonic() + timeout_s
        records = 0
        while todo:
            for msg in consumer.consume(10000, 0.2):
                if msg.error():
                    if msg.error().fatal():
                        raise KafkaException(msg.error())
                    continue
                records += 1
                key, digest = parse_changelog_key(msg.key())
                entries = result.get(key)
                if entries is None:
                    continue  # another input partition sharing this changelog partition
                if msg.value() is None:
                    entries.pop(digest, None)  # tombstone: evicted
                else:
                    entries[digest] = int(msg.value())
            for tp in consumer.position(list(todo.values())):
                if tp.offset >= ends[tp.partition]:
                    del todo[tp.partition]
            if todo and time.monotonic() > deadline:
                raise ChangelogIncomplete(
                    f"changelog {topic} partitions {sorted(todo)} not read to their end within {timeout_s:.0f}s "
                    "(a transaction still open?)"
                )
        log.info("dedup state rebuilt from %d changelog records of %s", records, topic)
        return result
    finally:
        consumer.close()


def _high_watermarks(conf: dict, topic: str, partitions: list[int], attempts: int = 10) -> dict[int, int]:
    """Transient errors (a leader election after topic creation or a broker
    restart: NOT_LEADER_FOR_PARTITION) are retried, not fatal."""
    consumer = Consumer(conf)
    try:
        for attempt in range(attempts):
            try:
                return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10.0)[1] for p in partitions}
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                if attempt == attempts - 1 or not (isinstance(err, KafkaError) and (err.retriable() or err.code() in (
                        KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError._TRANSPORT))):
                    raise
                time.sleep(min(0.2 * 2 ** attempt, 3.0))
        raise AssertionError("unreachable")
    finally:
        consumer.close()
