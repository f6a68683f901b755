"""Per-worker settings: environment variables named after the worker, flags on top."""

import argparse

import pytest

from consumers.common import WorkerSettings, add_worker_arguments, env_from_args, is_poison
from tradebus.config import ConfigError, Env


def parse(argv):
    parser = argparse.ArgumentParser()
    add_worker_arguments(parser, "store", batch_size=5000, flush_ms=200, http_port=9412)
    parser.add_argument("--database-url")
    return parser.parse_args(argv)


def test_defaults_and_environment():
    assert WorkerSettings.from_env(Env({}), "store", batch_size=5000, flush_ms=200) == \
        WorkerSettings("store", "tradebus-store", 5000, 200)
    s = WorkerSettings.from_env(Env({"TRADEBUS_STORE_GROUP": "g", "TRADEBUS_STORE_BATCH_SIZE": "10",
                                     "TRADEBUS_STORE_FLUSH_MS": "5", "TRADEBUS_STORE_SESSION_TIMEOUT_MS": "6000"}),
                                "store", batch_size=5000, flush_ms=200)
    assert (s.group, s.batch_size, s.flush_ms, s.session_timeout_ms) == ("g", 10, 5, 6000)


def test_flags_win_over_the_environment():
    args = parse(["--group", "mine", "--batch-size", "7", "--http-port", "0", "--database-url", "sqlite:///x.db"])
    env = env_from_args(args, "store", {"database_url": "TRADEBUS_DATABASE_URL"},
                        environ={"TRADEBUS_STORE_GROUP": "env", "TRADEBUS_STORE_FLUSH_MS": "9"})
    s = WorkerSettings.from_env(env, "store", batch_size=5000, flush_ms=200)
    assert (s.group, s.batch_size, s.flush_ms) == ("mine", 7, 9)
    assert env.raw("TRADEBUS_HTTP_PORT") == "0" and env.raw("TRADEBUS_DATABASE_URL") == "sqlite:///x.db"


def test_bad_values_name_the_variable():
    with pytest.raises(ConfigError, match="TRADEBUS_DEDUP_BATCH_SIZE"):
        WorkerSettings.from_env(Env({"TRADEBUS_DEDUP_BATCH_SIZE": "0"}), "dedup", batch_size=1, flush_ms=1)
    with pytest.raises(ConfigError, match="TRADEBUS_DEDUP_FLUSH_MS"):
        WorkerSettings.from_env(Env({"TRADEBUS_DEDUP_FLUSH_MS": "soon"}), "dedup", batch_size=1, flush_ms=1)


def test_poison_versus_transient_decoding_errors():
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    assert is_poison(ValueError("not Confluent-framed Avro"))
    assert is_poison(EOFError())
    assert is_poison(SchemaRegistryError(404, 40403, "Schema not found"))
    assert not is_poison(SchemaRegistryError(503, 50003, "unavailable"))
    assert not is_poison(ConnectionRefusedError())
