"""Stand-ins for confluent_kafka objects in worker unit tests."""

from __future__ import annotations


class FakeMessage:
    """A consumed record: what the workers read from confluent_kafka.Message."""

    def __init__(self, topic: str, partition: int, offset: int, value: bytes = b"v", key: bytes = b"k"):
        self._t, self._p, self._o, self._v, self._k = topic, partition, offset, value, key

    def topic(self):
        return self._t

    def partition(self):
        return self._p

    def offset(self):
        return self._o

    def value(self):
        return self._v

    def key(self):
        return self._k

    def error(self):
        return None
