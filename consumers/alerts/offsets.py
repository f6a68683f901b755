"""Which offsets may be committed while alerts are still being delivered.

Deliveries finish out of order (a slow webhook, a fast log), so a record's
offset becomes committable only when every alert (and dead letter) it caused
has been written to Kafka, and every earlier record of its partition too.
The committable offset of a partition is the lowest record still pending,
or the last consumed offset + 1 when nothing is pending.

Used from the consume loop's thread only (producer acks are served there).
"""

from __future__ import annotations

from confluent_kafka import TopicPartition

Partition = tuple[str, int]


class OffsetTracker:
    def __init__(self):
        self._pending: dict[Partition, dict[int, int]] = {}  # partition -> offset -> outputs not yet acked
        self._next: dict[Partition, int] = {}  # last consumed + 1
        self._committed: dict[Partition, int] = {}

    def consumed(self, topic: str, partition: int, offset: int) -> None:
        """A record was handled (its outputs, if any, were added before)."""
        tp = (topic, partition)
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def add_output(self, topic: str, partition: int, offset: int) -> None:
        """The record at `offset` caused one more record (an alert, a dead letter) on its way to Kafka."""
        waiting = self._pending.setdefault((topic, partition), {})
        waiting[offset] = waiting.get(offset, 0) + 1

    def written(self, topic: str, partition: int, offset: int) -> None:
        """One output of the record at `offset` was acknowledged by Kafka."""
        waiting = self._pending.get((topic, partition))
        if not waiting or offset not in waiting:
            return  # partition forgotten (revoked) meanwhile
        waiting[offset] -= 1
        if waiting[offset] <= 0:
            del waiting[offset]

    def pending(self, partitions: set[Partition] | None = None) -> int:
        return sum(sum(w.values()) for tp, w in self._pending.items() if partitions is None or tp in partitions)

    def committable(self, partitions: set[Partition] | None = None) -> list[TopicPartition]:
        """Offsets that advanced since the last commit and are safe to commit."""
        out = []
        for tp, next_offset in self._next.items():
            if partitions is not None and tp not in partitions:
                continue
            waiting = self._pending.get(tp)
            offset = min(waiting) if waiting else next_offset
            if offset > self._committed.get(tp, -1):
                out.append(TopicPartition(tp[0], tp[1], offset))
        return out

    def committed(self, offsets: list[TopicPartition]) -> None:
        for tp in offsets:
            key = (tp.topic, tp.partition)
            self._committed[key] = max(self._committed.get(key, -1), tp.offset)

    def forget(self, partitions: set[Partition]) -> None:
        """Partitions revoked or lost: their next owner resumes from the last commit."""
        for tp in partitions:
            self._pending.pop(tp, None)
            self._next.pop(tp, None)
            self._committed.pop(tp, None)
