"""The demo in its short mode, and tail/status/verify, against the real stack.

One demo run (module fixture) on a topic prefix and consumer groups of its
own; its ledgers and SQLite store then serve the verify tests."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests import samples
from tests.integration.conftest import REPO
from tradebus.publishing import Publisher
from tradebus.topics import HTI_IDEAS


def tool_env(prefix: str, **extra) -> dict:
    return {**os.environ, "TRADEBUS_TOPIC_PREFIX": prefix, "TRADEBUS_LOG_FORMAT": "json", **extra}


def processes_with(marker: str) -> list[int]:
    """PIDs whose environment carries marker (our children inherit the prefix)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if marker.encode() in (proc / "environ").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                pass
    return found


@pytest.fixture(scope="module")
def demo_run(stack, tmp_path_factory):
    prefix = f"demo{uuid.uuid4().hex[:8]}."
    workdir = tmp_path_factory.mktemp("demo")
    groups = {f"TRADEBUS_{w}_GROUP": f"{prefix}{w.lower()}" for w in ("DEDUP", "STORE", "ALERTS")}
    result = subprocess.run(
        [sys.executable, "-m", "tradebus.cli", "demo", "--duration", "30", "--no-view", "--workdir", str(workdir)],
        env=tool_env(prefix, **groups), capture_output=True, text=True, timeout=240, cwd=REPO,
    )
    return prefix, workdir, result


def test_demo_short_mode_reaches_the_store_and_stops_cleanly(demo_run):
    prefix, workdir, result = demo_run
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    assert "data reached the store: yes; clean shutdown: yes; store matches the ledgers: yes" in out
    with sqlite3.connect(workdir / "tradebus.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM idea_versions").fetchone()[0] > 0
        assert conn.execute("SELECT COUNT(*) FROM order_events").fetchone()[0] > 0
    assert processes_with(prefix) == [], "a demo child process was left behind"


def test_verify_reports_missing_and_extra(demo_run):
    prefix, workdir, _ = demo_run
    db = workdir / "tradebus.db"
    args = [sys.executable, "-m", "tradebus.cli", "verify", "--hti-ledger", str(workdir / "hti.ledger.jsonl"),
            "--anthid-ledger", str(workdir / "anthid.ledger.jsonl"), "--database-url", f"sqlite:///{db}", "--json"]
    ok = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert ok.returncode == 0 and json.loads(ok.stdout)["ok"] is True

    with sqlite3.connect(db) as conn:
        idea_id, last_update = conn.execute("SELECT idea_id, last_update_text FROM idea_versions LIMIT 1").fetchone()
        conn.execute("DELETE FROM idea_versions WHERE idea_id = ? AND last_update_text = ?", (idea_id, last_update))
        conn.execute("INSERT INTO trades (trade_key, exec_id, order_id, client_order_id, account_id, symbol, side, quantity, "
                     "price, received_at, organization_id, upstream_protobuf, ingested_at, producer_instance, replay) "
                     "SELECT 'exec|NOT-EMITTED', 'NOT-EMITTED', order_id, client_order_id, account_id, symbol, side, quantity, "
                     "price, received_at, organization_id, upstream_protobuf, ingested_at, producer_instance, replay "
                     "FROM trades LIMIT 1")
    bad = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=REPO)
    report = json.loads(bad.stdout)
    assert bad.returncode == 1 and report["ok"] is False
    assert report["kinds"]["ideas"]["missing"] == [str((idea_id, last_update))]
    assert report["kinds"]["trades"]["extra"] == ["exec|NOT-EMITTED"]


def test_tail_prints_decoded_records_as_json(common, topics):
    publisher = Publisher(common, "hti", [HTI_IDEAS])
    sent = [samples.hti_idea() for _ in range(3)]
    for i, record in enumerate(sent):
        record["idea_id"] = f"idea-{i}"
        publisher.publish(HTI_IDEAS, record["idea_id"], record)
    publisher.flush(30)
    result = subprocess.run(
        [sys.executable, "-m", "tradebus.cli", "tail", "hti.ideas.v1", "--from-beginning", "--no-follow", "--json"],
        env=tool_env(topics), capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(r["key"] for r in lines) == ["idea-0", "idea-1", "idea-2"]
    first = next(r for r in lines if r["key"] == "idea-0")["value"]
    assert first["instrument"] == "GLD" and first["confidence"] == 0.9
    assert first["last_update"] == "2026-04-22T13:17:47Z"
    assert first["metadata"]["source"] == "hti"


def test_status_shows_stack_topics_and_producers(common, topics):
    publisher = Publisher(common, "anthid", [])
    publisher.status("heartbeat", "alive")
    publisher.flush(30)
    result = subprocess.run([sys.executable, "-m", "tradebus.cli", "status", "--json"], env=tool_env(topics),
                            capture_output=True, text=True, timeout=90, cwd=REPO)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert all(h["ok"] for h in report["stack"].values())
    sizes = {row["topic"]: row for row in report["topics"]}
    assert sizes[f"{topics}tradebus.status.v1"]["records"] == 1
    assert sizes[f"{topics}hti.ideas.v1"]["exists"] is True
    assert report["producers"]["anthid/it"]["kind"] == "heartbeat"
