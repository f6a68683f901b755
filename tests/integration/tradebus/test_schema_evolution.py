"""Subjects use BACKWARD compatibility in the real registry: a compatible
change registers, an incompatible one is refused with a clear error."""

import json
import uuid

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from tradebus.serde import SchemaRegistrationError, register_schema, registry_client, schema_text


def test_compatible_change_registers_incompatible_refused(common):
    client = registry_client(common.kafka)
    subject = f"evolution-{uuid.uuid4().hex[:8]}-value"
    first = register_schema(client, subject, "tradebus.v1.StatusEvent")
    assert client.get_compatibility(subject) == "BACKWARD"

    schema = json.loads(schema_text("tradebus.v1.StatusEvent"))
    # Compatible: a new optional field with a default.
    schema["fields"].append({"name": "region", "type": ["null", "string"], "default": None})
    second = client.register_schema(subject, Schema(json.dumps(schema), "AVRO"))
    assert second != first

    # Incompatible: a new required field without a default.
    schema["fields"].append({"name": "must_have", "type": "string"})
    with pytest.raises(SchemaRegistryError) as err:
        client.register_schema(subject, Schema(json.dumps(schema), "AVRO"))
    assert err.value.http_status_code == 409


def test_incompatible_change_to_a_pipeline_subject_fails_with_a_clear_message(common):
    client = registry_client(common.kafka)
    subject = f"evolution-{uuid.uuid4().hex[:8]}-value"
    register_schema(client, subject, "tradebus.v1.DeadLetter")
    # Registering a totally different record under the same subject is refused.
    with pytest.raises(SchemaRegistrationError, match="incompatible"):
        register_schema(client, subject, "tradebus.v1.Alert")


def test_unreachable_registry_names_the_setting():
    client = SchemaRegistryClient({"url": "http://127.0.0.1:1/apis/ccompat/v7"})
    with pytest.raises(SchemaRegistrationError, match="TRADEBUS_SCHEMA_REGISTRY_URL"):
        register_schema(client, "x-value", "tradebus.v1.Alert")
