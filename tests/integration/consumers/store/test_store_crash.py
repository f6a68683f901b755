"""`tradebus consume store` as a real process: killed between the database
commit and the offset commit (test hook), and with SIGKILL mid-batch, then
restarted: every row is there exactly once. Also: the SQLite default, and a
bad TRADEBUS_DATABASE_URL failing at start."""

from __future__ import annotations

import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

from consumers.store import Store
from consumers.store.worker import CRASH_HOOK
from tests.integration.consumers.dedup.helpers import (
    committed_to_end, distinct_records, log_on_failure, names, start_cli, wait_until,
)
from tests.integration.consumers.store.test_store_worker import STORE_INPUTS, publish_unique

EXPECTED_300 = {"idea_versions": 300, "ideas": 50, "order_events": 300, "orders": 40, "positions": 30,
                "trades": 300, "intent_actions": 300, "alerts": 0}


def counts(url):
    with Store.open(url) as store:
        return {t: store.count(t) for t in EXPECTED_300}


def committed_offsets(common, group) -> int:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**common.kafka.client_conf(), "group.id": group})
    try:
        tps = [TopicPartition(names(common)(t), p) for t in STORE_INPUTS for p in range(t.partitions)]
        return sum(max(tp.offset, 0) for tp in consumer.committed(tps, timeout=10))
    finally:
        consumer.close()


def test_crash_after_db_commit_and_sigkill_replay_into_exact_rows(common, topics, pg_schema_url, tmp_path):
    rng = random.Random(7)
    group = f"{common.topic_prefix}tradebus-store"
    env = {
        "TRADEBUS_TOPIC_PREFIX": common.topic_prefix, "TRADEBUS_INSTANCE_ID": "it-crash", "TRADEBUS_HTTP_PORT": "0",
        "TRADEBUS_STORE_GROUP": group, "TRADEBUS_STORE_BATCH_SIZE": "100", "TRADEBUS_STORE_FLUSH_MS": "20",
        "TRADEBUS_DATABASE_URL": pg_schema_url, "TRADEBUS_STORE_SESSION_TIMEOUT_MS": "6000",
    }
    publish_unique(common, [item for i in range(300) for item in distinct_records(i)])  # 1,500 records
    log = tmp_path / "store.log"
    with log_on_failure(log):
        # 1. Exit right after the first database commit, before its offset commit.
        worker = start_cli(["consume", "store"], {**env, CRASH_HOOK: "1"}, log)
        assert worker.wait(60) == 86
        first = counts(pg_schema_url)
        assert sum(first.values()) > 0, "the first batch is in the database"
        assert committed_offsets(common, group) == 0, "...but its offsets were never committed"

        # 2. Again after three commits (the first batch is replayed into upserts).
        worker = start_cli(["consume", "store"], {**env, CRASH_HOOK: "3"}, log)
        assert worker.wait(60) == 86

        # 3. SIGKILL at a random moment while it works.
        worker = start_cli(["consume", "store"], env, log)
        try:
            wait_until(lambda: committed_offsets(common, group) > 0 or worker.poll() is not None, 60, interval=0.1,
                       message="offsets to move")
            time.sleep(rng.uniform(0, 0.2))
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)

        # 4. Run to the end; SIGTERM finishes, commits and exits 0.
        worker = start_cli(["consume", "store"], env, log)
        try:
            wait_until(lambda: committed_to_end(common, group, STORE_INPUTS), 120, interval=0.5, message="catch-up")
        finally:
            worker.send_signal(signal.SIGTERM)
            rc = worker.wait(60)
        assert rc == 0
        assert counts(pg_schema_url) == EXPECTED_300

    with Store.open(pg_schema_url) as store:
        # The current order is the newest version of each order id (command_seq grows with received_at).
        orders = {r["order_id"]: r["command_seq"] for r in store.rows("orders")}
        assert orders == {f"o-{k}": max(i for i in range(300) if i % 40 == k) for k in range(40)}
        ideas = {r["idea_id"]: r["last_update_text"] for r in store.rows("ideas")}
        assert ideas["idea-7"] == "2026-04-22 09:17:47 EST #257"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def test_sqlite_is_the_default_with_health_and_metrics(common, topics, tmp_path):
    port = free_port()
    env = {
        "TRADEBUS_TOPIC_PREFIX": common.topic_prefix, "TRADEBUS_INSTANCE_ID": "it-sqlite",
        "TRADEBUS_STORE_GROUP": f"{common.topic_prefix}tradebus-store", "TRADEBUS_DATABASE_URL": "",
        "TRADEBUS_CONSUMER_LAG_INTERVAL_SECONDS": "0.5",
    }
    publish_unique(common, [item for i in range(5) for item in distinct_records(i)])
    log = tmp_path / "store.log"
    worker = start_cli(["consume", "store", "--http-port", str(port)], env, log, cwd=tmp_path)
    try:
        wait_until(lambda: committed_to_end(common, env["TRADEBUS_STORE_GROUP"], STORE_INPUTS), 60, message="catch-up")
        wait_until(lambda: http_get(port, "/readyz")[0] == 200, 30, message="/readyz")
        status, body = http_get(port, "/readyz")
        assert '"database": true' in body and '"kafka": true' in body
        assert http_get(port, "/healthz")[0] == 200
        time.sleep(1.0)  # one more lag refresh after the catch-up
        status, metrics_text = http_get(port, "/metrics")
        assert status == 200
        assert 'tradebus_store_rows_total{table="order_events"} 5.0' in metrics_text
        assert "tradebus_consumer_lag{" in metrics_text and "tradebus_worker_batch_seconds_count" in metrics_text
        lags = [line for line in metrics_text.splitlines() if line.startswith("tradebus_consumer_lag{")]
        assert lags and all(line.endswith(" 0.0") for line in lags), lags
    finally:
        worker.send_signal(signal.SIGTERM)
        rc = worker.wait(60)
    with log_on_failure(log):
        assert rc == 0
    db = tmp_path / "tradebus.db"
    assert db.exists()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT count(*) FROM order_events").fetchone()[0] == 5
    assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] >= 1


def test_a_bad_database_url_fails_at_start_naming_the_setting(stack, tmp_path):
    env = {"TRADEBUS_DATABASE_URL": "postgresql://tradebus:Sw0rdf1sh@127.0.0.1:1/tradebus?connect_timeout=2",
           "TRADEBUS_HTTP_PORT": "0", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "tradebus.cli", "consume", "store"], env=env, capture_output=True,
                            text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2
    assert "TRADEBUS_DATABASE_URL" in result.stderr and "Sw0rdf1sh" not in result.stderr + result.stdout
    result = subprocess.run([sys.executable, "-m", "tradebus.cli", "consume", "store"],
                            env={**env, "TRADEBUS_DATABASE_URL": "mongodb://x"}, capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 2 and "TRADEBUS_DATABASE_URL" in result.stderr
