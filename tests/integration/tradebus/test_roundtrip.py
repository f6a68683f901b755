"""Every record type, produced through our serializer to real Kafka, comes
back equal through a plain AvroDeserializer that knows only the registry URL."""

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from tests import samples
from tradebus.publishing import Publisher
from tradebus.topics import DATA_TOPICS, ALERTS, DLQ, STATUS, TopicNames


def test_every_record_type_round_trips(common, topics):
    all_topics = [*DATA_TOPICS, ALERTS]
    publisher = Publisher(common, "it", all_topics)
    sent = {}
    for topic in [*all_topics, STATUS, DLQ]:
        record = samples.BY_SCHEMA[topic.value_schema]()
        publisher.publish(topic, "key-1", record)
        sent[TopicNames(common.topic_prefix)(topic)] = record
    publisher.flush(30)

    deserializer = AvroDeserializer(SchemaRegistryClient({"url": common.kafka.schema_registry_url}))
    consumer = Consumer({"bootstrap.servers": common.kafka.bootstrap_servers, "group.id": "rt", "enable.auto.commit": False})
    received = {}
    for name, record in sent.items():
        parts = consumer.list_topics(name, timeout=10).topics[name].partitions
        for p in parts:
            low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)
            if high > low:
                consumer.assign([TopicPartition(name, p, low)])
                msg = consumer.poll(10)
                assert msg is not None and msg.error() is None
                received[name] = deserializer(msg.value(), SerializationContext(name, MessageField.VALUE))
                assert msg.key() == b"key-1"
    consumer.close()
    assert received == sent
