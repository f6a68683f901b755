"""DedupWorker's transaction failure handling, with stand-in clients: abort
and rewind on transient errors, replace a producer that failed fatally (a
broker outage longer than the transaction timeout), exit when replacing
happens too often (another process with our transactional id). The real
outage is in tests/e2e/test_faults.py."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from consumers.dedup.worker import MAX_PRODUCER_REPLACEMENTS, DedupSettings, DedupWorker
from tests.unit.consumers.fakes import FakeMessage
from tradebus.config import CommonSettings, Env


class Producer:
    def __init__(self, abort_errors=()):
        self.abort_errors = list(abort_errors)
        self.aborts = 0
        self.inits = 0

    def abort_transaction(self, timeout):
        self.aborts += 1
        if self.abort_errors:
            raise KafkaException(self.abort_errors.pop(0))

    def init_transactions(self, timeout):
        self.inits += 1


class Consumer:
    def __init__(self):
        self.seeks: list[tuple[str, int, int]] = []

    def seek(self, tp: TopicPartition):
        self.seeks.append((tp.topic, tp.partition, tp.offset))


def timed_out():
    return KafkaError(KafkaError._TIMED_OUT, "retry call to resume", retriable=True)


def invalid_state():
    return KafkaError(KafkaError.INVALID_TXN_STATE, "Failed to end transaction", fatal=True)


@pytest.fixture
def worker():
    env = Env({"TRADEBUS_HTTP_PORT": "0", "TRADEBUS_INSTANCE_ID": "unit", "TRADEBUS_SHUTDOWN_TIMEOUT_SECONDS": "1"})
    w = DedupWorker(CommonSettings.from_env(env), DedupSettings.from_env(env))
    w.consumer = Consumer()
    w.producer = Producer()
    w.created = []

    def new_producer():
        p = Producer()
        w.created.append(p)
        return p

    w._transactional_producer = new_producer
    w.stop.wait = lambda timeout=None: False  # no real sleeping between abort attempts
    return w


BATCH = [FakeMessage("raw", 0, 10), FakeMessage("raw", 0, 11), FakeMessage("raw", 2, 7)]


def test_transient_error_aborts_and_rewinds_to_the_batch_start(worker):
    worker.producer = Producer(abort_errors=[timed_out(), timed_out()])
    first = worker.producer
    worker._abort(BATCH, KafkaException(timed_out()))
    assert first.aborts == 3  # two "retry call to resume", then done
    assert worker.producer is first and worker.created == []
    assert sorted(worker.consumer.seeks) == [("raw", 0, 10), ("raw", 2, 7)]


def test_fatal_error_in_the_transaction_replaces_the_producer(worker):
    old = worker.producer
    worker._abort(BATCH, KafkaException(invalid_state()))
    assert old.aborts == 0  # a fatal producer cannot abort
    assert worker.producer is worker.created[0] and worker.producer.inits == 1
    assert sorted(worker.consumer.seeks) == [("raw", 0, 10), ("raw", 2, 7)]


def test_abort_failing_fatally_after_an_outage_replaces_the_producer(worker):
    # The broker came back after the transaction timeout: the coordinator had
    # aborted our transaction, our abort is refused as INVALID_TXN_STATE.
    worker.producer = Producer(abort_errors=[timed_out(), invalid_state()])
    worker._abort(BATCH, KafkaException(timed_out()))
    assert len(worker.created) == 1 and worker.producer.inits == 1
    assert worker.consumer.seeks


def test_replacing_too_often_ends_the_process(worker):
    for _ in range(MAX_PRODUCER_REPLACEMENTS):
        worker._abort(BATCH, KafkaException(invalid_state()))
    assert len(worker.created) == MAX_PRODUCER_REPLACEMENTS
    with pytest.raises(KafkaException):
        worker._abort(BATCH, KafkaException(invalid_state()))
    assert len(worker.created) == MAX_PRODUCER_REPLACEMENTS


def test_abort_that_cannot_be_done_ends_the_process(worker):
    worker.producer = Producer(abort_errors=[KafkaError(KafkaError._STATE, "not retriable")])
    with pytest.raises(KafkaException):
        worker._abort(BATCH, KafkaException(timed_out()))
    assert worker.consumer.seeks == [] and worker.created == []


def test_a_bug_is_not_swallowed(worker):
    with pytest.raises(ZeroDivisionError):
        worker._abort(BATCH, ZeroDivisionError("bug"))
    assert worker.producer.aborts == 0 and worker.consumer.seeks == []
