"""Integration tests run against the real local stack (Kafka, Apicurio,
PostgreSQL). The stack is started by infra/local/stack.sh when it is down;
each test gets topics of its own through a unique topic prefix."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from tradebus.config import CommonSettings, Env

REPO = Path(__file__).resolve().parents[2]
PORTS = {"kafka": 9092, "kafka-sasl-ssl": 9094, "registry": 8081, "postgresql": 5432}
PG_URL = os.environ.get("TRADEBUS_TEST_PG_URL", "postgresql://tradebus:tradebus@127.0.0.1:5432/tradebus")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def pytest_collection_modifyitems(items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack():
    """Make sure the local stack answers; start it when it does not."""
    if not all(_listening(p) for p in PORTS.values()):
        result = subprocess.run(["bash", str(REPO / "infra/local/stack.sh"), "up"], capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            pytest.fail(f"local stack failed to start:\n{result.stdout}\n{result.stderr}")
    return PORTS


@pytest.fixture
def topic_prefix(request) -> str:
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def common(stack, topic_prefix) -> CommonSettings:
    return CommonSettings.from_env(Env({
        "TRADEBUS_TOPIC_PREFIX": topic_prefix,
        "TRADEBUS_INSTANCE_ID": "it",
        "TRADEBUS_HTTP_PORT": "0",
        "TRADEBUS_KAFKA_LINGER_MS": "1",
    }))


@pytest.fixture
def topics(common):
    """Every registry topic created under this test's prefix."""
    from tradebus.topics_cli import ensure_topics

    ensure_topics(common)
    yield common.topic_prefix
    # Leave the shared broker as we found it: thousands of test topics slow its restarts.
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(common.kafka.client_conf())
    mine = [t for t in admin.list_topics(timeout=10).topics if t.startswith(common.topic_prefix)]
    if mine:
        for future in admin.delete_topics(mine, operation_timeout=30).values():
            try:
                future.result()
            except Exception:  # already gone, or the broker is restarting: not the test's concern
                pass


@pytest.fixture
def pg_url(stack) -> str:
    return PG_URL
