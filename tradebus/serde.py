"""Avro in the Confluent wire format: magic byte 0, the 4-byte big-endian
schema id, then the Avro binary body.

Schemas are loaded and parsed once per process. The schema is registered (or
checked) in the registry at start, so an unreachable registry or an
incompatible change fails the process before it reads any upstream data.
"""

from __future__ import annotations

import functools
import io
import json
import struct
from typing import Any

import fastavro
import fastavro.schema
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from tradebus.config import ConfigError, KafkaSettings, home_dir
from tradebus.redaction import redact

MAGIC_BYTE = 0
_HEADER = struct.Struct(">bI")
COMPATIBILITY = "BACKWARD"


class SchemaRegistrationError(RuntimeError):
    """The registry refused or could not be reached; the message says which subject and why."""


@functools.lru_cache(maxsize=None)
def schema_text(full_name: str) -> str:
    """The schema with every named reference expanded, as registered."""
    path = home_dir() / "schemas" / f"{full_name}.avsc"
    if not path.exists():
        raise ConfigError(f"TRADEBUS_HOME: schema file {path} not found")
    loaded = fastavro.schema.load_schema(str(path), _write_hint=False)
    return json.dumps(loaded, separators=(",", ":"))


@functools.lru_cache(maxsize=None)
def parsed_schema(full_name: str) -> dict:
    return fastavro.parse_schema(json.loads(schema_text(full_name)))


def registry_client(settings: KafkaSettings) -> SchemaRegistryClient:
    return SchemaRegistryClient(settings.registry_conf())


def register_schema(client: SchemaRegistryClient, subject: str, full_name: str, *, set_compatibility: bool = True) -> int:
    """Register (idempotently) and return the schema id; fail clearly."""
    try:
        if set_compatibility:
            client.set_compatibility(subject_name=subject, level=COMPATIBILITY)
        return client.register_schema(subject, Schema(schema_text(full_name), "AVRO"))
    except SchemaRegistryError as exc:
        if exc.http_status_code == 409:
            raise SchemaRegistrationError(
                f"schema registry refused {full_name} for subject {subject}: incompatible with the registered "
                f"versions under {COMPATIBILITY} compatibility ({redact(exc.error_message)})"
            ) from None
        raise SchemaRegistrationError(
            f"schema registry error for subject {subject}: HTTP {exc.http_status_code} {redact(exc.error_message)}"
        ) from None
    except Exception as exc:  # connection refused, DNS, TLS: name the setting to fix
        raise SchemaRegistrationError(
            f"schema registry unreachable (TRADEBUS_SCHEMA_REGISTRY_URL): {type(exc).__name__}: {redact(str(exc))}"
        ) from None


class AvroRecordSerializer:
    """Serializes dicts of one record type for one subject. One job, no I/O
    after construction: the schema id is resolved when it is built."""

    def __init__(self, schema_id: int, full_name: str):
        self.schema_id = schema_id
        self.full_name = full_name
        self._schema = parsed_schema(full_name)
        self._header = _HEADER.pack(MAGIC_BYTE, schema_id)

    @classmethod
    def registered(cls, client: SchemaRegistryClient, subject: str, full_name: str) -> "AvroRecordSerializer":
        return cls(register_schema(client, subject, full_name), full_name)

    def __call__(self, record: dict[str, Any]) -> bytes:
        buffer = io.BytesIO()
        buffer.write(self._header)
        fastavro.schemaless_writer(buffer, self._schema, record)
        return buffer.getvalue()


class AvroRecordDeserializer:
    """Reads Confluent-framed Avro; writer schemas fetched once per id and
    resolved against our reader schema when one is given."""

    def __init__(self, client: SchemaRegistryClient, reader_full_name: str | None = None):
        self.client = client
        self._reader = parsed_schema(reader_full_name) if reader_full_name else None
        self._writers: dict[int, dict] = {}

    def __call__(self, data: bytes) -> dict[str, Any]:
        if data is None or len(data) < 5:
            raise ValueError("not Confluent-framed Avro: shorter than 5 bytes")
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != MAGIC_BYTE:
            raise ValueError(f"not Confluent-framed Avro: magic byte {magic}")
        writer = self._writers.get(schema_id)
        if writer is None:
            writer = fastavro.parse_schema(json.loads(self.client.get_schema(schema_id).schema_str))
            self._writers[schema_id] = writer
        return fastavro.schemaless_reader(io.BytesIO(data[5:]), writer, self._reader)
