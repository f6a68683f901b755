"""PipelineProducer against librdkafka's built-in mock cluster."""

import pytest
from confluent_kafka import Consumer

from tradebus.config import KafkaSettings
from tradebus.kafka import PipelineProducer, UnsentRecordsError


def test_acks_counted_and_records_readable():
    producer = PipelineProducer(KafkaSettings(bootstrap_servers=""), "t", **{"test.mock.num.brokers": 1})
    acks = []
    for i in range(50):
        producer.produce("mock-topic", f"k{i}".encode(), f"v{i}".encode(), lambda err, msg: acks.append(err))
    producer.flush(10)
    assert producer.acked == 50 and acks == [None] * 50


def test_backpressure_bounded_queue_and_loud_flush():
    # A broker that never answers: the queue fills, produce() waits, flush() raises.
    settings = KafkaSettings(bootstrap_servers="127.0.0.1:1", queue_max_messages=100, message_timeout_ms=0)
    producer = PipelineProducer(settings, "t")
    for i in range(100):
        producer.produce("t", b"k", b"v")
    assert producer.pending() == 100
    with pytest.raises(UnsentRecordsError, match="100 records"):
        producer.flush(1)


def test_stop_ends_a_backpressure_wait():
    import threading

    from tradebus.kafka import IntakeStopped

    stop = threading.Event()
    settings = KafkaSettings(bootstrap_servers="127.0.0.1:1", queue_max_messages=100, message_timeout_ms=0)
    producer = PipelineProducer(settings, "t", stop=stop)
    for _ in range(100):
        producer.produce("t", b"k", b"v")
    threading.Timer(0.3, stop.set).start()
    with pytest.raises(IntakeStopped):
        producer.produce("t", b"k", b"one too many")
    assert producer.pending() == 100


def test_oversize_record_raises_record_too_large():
    from tradebus.kafka import RecordTooLarge

    producer = PipelineProducer(KafkaSettings(bootstrap_servers=""), "t", **{"test.mock.num.brokers": 1})
    with pytest.raises(RecordTooLarge):
        producer.produce("mock-topic", b"k", b"x" * 2_000_000)
