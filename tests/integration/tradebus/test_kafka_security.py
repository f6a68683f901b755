"""Kafka over SASL_SSL, configured only through TRADEBUS_KAFKA_* variables,
against the local broker's SASL_SSL listener (infra/local/stack.sh)."""

import logging

import pytest
from confluent_kafka import Consumer, TopicPartition

from tests import samples
from tests.integration.conftest import REPO
from tradebus.config import CommonSettings, Env
from tradebus.kafka import PipelineProducer, UnsentRecordsError
from tradebus.publishing import Publisher
from tradebus.topics import DLQ, TopicNames

CA = REPO / ".local/kafka/tls/ca.pem"
PASSWORD = "tradebus-sasl-secret"  # the local stack's listener credentials (infra/local/stack.sh)


def sasl_env(prefix: str, password: str) -> Env:
    return Env({
        "TRADEBUS_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9094",
        "TRADEBUS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "TRADEBUS_KAFKA_SASL_MECHANISM": "PLAIN",
        "TRADEBUS_KAFKA_SASL_USERNAME": "tradebus",
        "TRADEBUS_KAFKA_SASL_PASSWORD": password,
        "TRADEBUS_KAFKA_SSL_CA_LOCATION": str(CA),
        "TRADEBUS_TOPIC_PREFIX": prefix,
        "TRADEBUS_INSTANCE_ID": "sec",
    })


def test_publish_and_read_back_over_sasl_ssl(topics):
    common = CommonSettings.from_env(sasl_env(topics, PASSWORD))
    publisher = Publisher(common, "hti", [])
    record = samples.dead_letter()
    publisher.publish(DLQ, "k", record)
    publisher.flush(30)
    assert publisher.producer.acked == 1

    name = TopicNames(topics)(DLQ)
    consumer = Consumer({**common.kafka.client_conf(), "group.id": "sec", "enable.auto.commit": False})
    found = 0
    for p in range(DLQ.partitions):
        low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)
        found += high - low
    consumer.close()
    assert found == 1


def test_wrong_password_fails_loudly_without_leaking_it(topics, caplog):
    wrong = "definitely-wrong-password-77"
    common = CommonSettings.from_env(sasl_env(topics, wrong))
    producer = PipelineProducer(common.kafka, "sec-wrong")
    producer.produce(TopicNames(topics)(DLQ), b"k", b"v")
    with caplog.at_level(logging.WARNING), pytest.raises(UnsentRecordsError):
        producer.flush(5)
    text = caplog.text
    assert "Authentication failed" in text or "SASL authentication error" in text
    assert wrong not in text
