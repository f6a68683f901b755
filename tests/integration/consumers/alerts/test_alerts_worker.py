"""The alerts worker against the real stack, on topics of its own: sample
records on the unique topics and the status topic in, alerts with their
delivery status on tradebus.alerts.v1 out; cooldown suppression; the silence
alert on the worker's own timer with no traffic; a failing webhook that
neither loses the alert nor stops the worker; a poison record to the DLQ;
SIGTERM -> exit 0 with offsets committed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from consumers.alerts.rules import parse_rules
from consumers.alerts.sinks import build_sinks
from consumers.alerts.worker import AlertsOptions, AlertsWorker
from consumers.common import WorkerSettings
from tests import samples
from tests.unit.consumers.alerts.fakes import WebhookServer
from tradebus.config import Env
from tradebus.publishing import Publisher
from tradebus.serde import AvroRecordDeserializer, registry_client
from tradebus.topics import (ALERTS, BROKER_ORDERS, BROKER_POSITIONS, BROKER_TRADES, DLQ, HTI_IDEAS,
                             UNIQUE_TOPICS, TopicNames)

REPO = Path(__file__).resolve().parents[4]
U_IDEAS, U_ORDERS = UNIQUE_TOPICS[HTI_IDEAS.name], UNIQUE_TOPICS[BROKER_ORDERS.name]
U_TRADES, U_POSITIONS = UNIQUE_TOPICS[BROKER_TRADES.name], UNIQUE_TOPICS[BROKER_POSITIONS.name]


def now():
    return datetime.now(timezone.utc)


def live(record: dict) -> dict:
    record["metadata"] = {**record["metadata"], "replay": False, "received_at": now()}
    return record


def trade(order_id, exec_id, quantity, price="100"):
    return live({**samples.broker_trade(), "order_id": order_id, "exec_id": exec_id, "quantity": quantity, "price": price})


def start_worker(common, rules_yaml: str, env: dict | None = None, group: str | None = None, **options):
    ruleset = parse_rules(textwrap.dedent(rules_yaml), "it.yaml")
    sinks = build_sinks(ruleset, Env(env or {}))
    settings = WorkerSettings(name="alerts", group=group or f"it-alerts-{uuid.uuid4().hex[:8]}", batch_size=1, flush_ms=5)
    stop = threading.Event()
    worker = AlertsWorker(common, settings, AlertsOptions(timer_s=0.2, commit_s=0.2, **options), ruleset, sinks, stop=stop)
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("rc", worker.run()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not (worker.started and worker.consumer.assignment()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker.started and worker.consumer.assignment(), "worker did not join its group"
    return worker, stop, thread, result


def read_all(common, topic: str, want: int, timeout: float = 30.0, settle: float = 0.0) -> list[dict]:
    """Records of a topic from the beginning, until `want` arrived (then `settle` more seconds)."""
    consumer = Consumer({**common.kafka.client_conf(), "group.id": f"it-read-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    decode = AvroRecordDeserializer(registry_client(common.kafka))
    consumer.subscribe([topic])
    out, deadline, settled = [], time.monotonic() + timeout, None
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                out.append(decode(msg.value()) | {"_key": msg.key().decode()})
            if len(out) >= want:
                settled = settled or time.monotonic() + settle
                if time.monotonic() >= settled:
                    break
    finally:
        consumer.close()
    return out


def committed(common, group: str, topic: str, partitions: int) -> int:
    consumer = Consumer({**common.kafka.client_conf(), "group.id": group})
    try:
        offsets = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return sum(tp.offset for tp in offsets if tp.offset >= 0)
    finally:
        consumer.close()


RULES = """
sinks:
  hook: {type: webhook, max_attempts: 3, backoff_seconds: 0.05}
rules:
  - name: big-fill
    kind: large_fill
    min_notional: 1000
    key: "{rule}:{order_id}"
    cooldown_seconds: 60
    sinks: [log, hook]
  - name: bad-order
    kind: order_rejected_or_cancelled
  - name: etf-idea
    kind: new_idea
    asset_class: ETFS
    min_confidence: 0.8
  - name: swing
    kind: position_change
    min_change: 10
  - name: gap
    kind: gap_reported
"""


def test_alerts_land_on_the_topic_with_delivery_status(common, topics):
    names = TopicNames(common.topic_prefix)
    publisher = Publisher(common, "it", list(UNIQUE_TOPICS.values()))
    with WebhookServer(script=[500, 500]) as hook:  # fails twice, then succeeds
        worker, stop, thread, result = start_worker(common, RULES, {"TRADEBUS_ALERTS_WEBHOOK_URL": hook.url})
        publisher.publish(U_TRADES, "a-1|b-1", trade("b-1", "e-1", "40", "123.44"))  # 4937.60: fires
        publisher.publish(U_TRADES, "a-1|b-1", trade("b-1", "e-2", "20", "123.44"))  # same key: suppressed
        publisher.publish(U_TRADES, "a-1|b-2", trade("b-2", "e-3", "1", "999.99"))  # below the notional
        publisher.publish(U_ORDERS, "o-1", live({**samples.broker_order(), "order_status": "ORDER_STATUS_REJECTED"}))
        publisher.publish(U_ORDERS, "o-2", live({**samples.broker_order(), "order_id": "o-2"}))  # partially filled
        publisher.publish(U_IDEAS, "idea", live(samples.hti_idea()))
        publisher.publish(U_POSITIONS, "a-1|AAPL", live({**samples.broker_position(), "quantity": "40"}))
        publisher.publish(U_POSITIONS, "a-1|AAPL", live({**samples.broker_position(), "quantity": "100"}))
        publisher.status("gap", "sequence jumped", event_type="EVENT_TYPE_BROKER_TRADE")
        publisher.flush(30)

        alerts = read_all(common, names(ALERTS), want=5, settle=1.0)
        hook_received = hook.wait_for(1)
        stop.set()
        thread.join(60)
    assert result.get("rc") == 0 and not thread.is_alive()
    by_rule = {a["rule"]: a for a in alerts}
    assert sorted(by_rule) == ["bad-order", "big-fill", "etf-idea", "gap", "swing"] and len(alerts) == 5
    big = by_rule["big-fill"]
    assert big["alert_key"] == big["_key"] == "big-fill:b-1"
    assert big["details"]["notional"] == "4937.60" and big["source_topic"] == names(U_TRADES)
    assert [(d["sink"], d["status"], d["attempts"]) for d in big["deliveries"]] == [("log", "delivered", 1),
                                                                                   ("hook", "delivered", 3)]
    assert len(hook_received) == 1 and hook_received[0]["body"]["alert_key"] == "big-fill:b-1"
    assert by_rule["swing"]["details"]["change"] == "+60"
    assert by_rule["gap"]["alert_key"] == "gap:it/it:EVENT_TYPE_BROKER_TRADE"
    assert [(d["sink"], d["status"]) for d in by_rule["bad-order"]["deliveries"]] == [("log", "delivered")]
    assert worker.suppressed == 1 and worker.fired == 5
    # offsets committed after the alerts were written: everything consumed is committed
    assert committed(common, worker.settings.group, names(U_TRADES), U_TRADES.partitions) == 3
    assert committed(common, worker.settings.group, names(U_POSITIONS), U_POSITIONS.partitions) == 2


def test_producer_silent_fires_on_the_timer_with_no_traffic(common, topics):
    names = TopicNames(common.topic_prefix)
    publisher = Publisher(common, "anthid", [])
    publisher.status("heartbeat")
    publisher.flush(30)
    worker, stop, thread, result = start_worker(common, """
        rules:
          - name: silent
            kind: producer_silent
            silent_seconds: 2
        """)
    try:
        [alert] = read_all(common, names(ALERTS), want=1, timeout=20)
        assert alert["alert_key"] == "silent:anthid/it" and alert["source_topic"] is None
        silent_for = (alert["fired_at"] - alert["event_time"]).total_seconds()  # event_time: the last heartbeat
        assert 2.0 < silent_for < 10
        time.sleep(1.5)  # once per silence: nothing more while it stays silent
        assert len(read_all(common, names(ALERTS), want=1, settle=1.0)) == 1
    finally:
        stop.set()
        thread.join(60)
    assert result.get("rc") == 0


def test_failing_webhook_and_poison_record_do_not_stop_the_worker_and_sigterm_exits_0(common, topics, tmp_path):
    names = TopicNames(common.topic_prefix)
    rules = tmp_path / "alerts.yaml"
    rules.write_text(textwrap.dedent("""
        sinks:
          hook: {type: webhook, max_attempts: 3, backoff_seconds: 0.05, timeout_seconds: 2}
        rules:
          - name: big-fill
            kind: large_fill
            min_notional: 1000
            cooldown_seconds: 0
            sinks: [log, hook]
        """))
    with WebhookServer(default=500, path="/hook/secret-hook-token-123") as hook:
        env = {**os.environ, "TRADEBUS_TOPIC_PREFIX": common.topic_prefix, "TRADEBUS_HTTP_PORT": "0",
               "TRADEBUS_INSTANCE_ID": "it", "TRADEBUS_ALERTS_RULES_FILE": str(rules),
               "TRADEBUS_ALERTS_WEBHOOK_URL": hook.url, "TRADEBUS_ALERTS_GROUP": f"it-alerts-{uuid.uuid4().hex[:8]}",
               "TRADEBUS_LOG_FORMAT": "json"}
        proc = subprocess.Popen([sys.executable, "-m", "tradebus.cli", "consume", "alerts"], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            publisher = Publisher(common, "it", list(UNIQUE_TOPICS.values()))
            publisher.publish(U_TRADES, "a-1|b-1", trade("b-1", "e-1", "50", "100"))
            publisher.publish_bytes(U_TRADES, "a-1|b-1", b"\x00\x00\x00\x00\x01not avro")  # poison, same partition
            publisher.publish(U_TRADES, "a-1|b-1", trade("b-1", "e-2", "60", "100"))
            publisher.flush(30)
            alerts = read_all(common, names(ALERTS), want=2, timeout=60)
            dead = read_all(common, names(DLQ), want=1, timeout=20)
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert sorted(a["details"]["exec_id"] for a in alerts) == ["e-1", "e-2"]
    for a in alerts:
        assert [(d["sink"], d["status"], d["attempts"], d["error"]) for d in a["deliveries"]] == [
            ("log", "delivered", 1, None), ("hook", "failed", 3, "HTTP 500")]
    assert dead[0]["source"] == "alerts" and dead[0]["details"]["reason_code"] == "undecodable"
    assert dead[0]["details"]["topic"] == names(U_TRADES)
    assert len([line for line in out.splitlines() if '"alert"' in line]) == 2  # the log sink's JSON lines
    assert "alert delivery failed" in err and "secret-hook-token-123" not in err + out
