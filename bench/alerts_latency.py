"""Emit-to-alert latency (issue 5 §6), about 1.5 minutes.

1,000 trades per second are published into the deduplicated trades topic
(anthid.broker-trades.unique.v1, on topics of the benchmark's own), each
with metadata.received_at set at emit. `tradebus consume alerts` runs as its
own process with one large_fill rule (cooldown 0) and a webhook sink pointing
at a local HTTP server, which runs in a third process so that it shares no
GIL with the worker or the publisher. Two mixes at the same 1,000 events/s:

- one event in ten is a large fill (100 alerts/s), the others are evaluated
  and dropped: alerting on a stream;
- every event is a large fill (1,000 webhook POSTs/s): the worst case.

Latency = webhook received (server clock) - metadata.received_at (emit),
same host, same clock, for every alert of the measured window (warm-up left
out). Beside it: emit to the alert record's timestamp on tradebus.alerts.v1
(written after delivery), and the worker's CPU per event.
Target: emit-to-delivered p99 <= 100 ms.

    .venv/bin/python -m bench.alerts_latency
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from bench.common import REPO, peak_rss_mb, percentile, write_results
from tests import samples
from tradebus.config import CommonSettings, Env
from tradebus.kafka import PipelineProducer
from tradebus.serde import AvroRecordDeserializer, AvroRecordSerializer, registry_client
from tradebus.topics import ALERTS, BROKER_TRADES, DLQ, STATUS, UNIQUE_TOPICS, TopicNames
from tradebus.topics_cli import ensure_topics

RATE = 1000.0
WARMUP_S, MEASURE_S, DRAIN_S = 4.0, 20.0, 15.0
TARGET_P99_MS = 100.0
MIXES = [("1 in 10 events alerts", 10), ("every event alerts", 1)]
TRADES = UNIQUE_TOPICS[BROKER_TRADES.name]
RULES = """
sinks:
  bench-hook:
    type: webhook
    url_env: BENCH_WEBHOOK_URL
    threads: {threads}
    max_attempts: 3
    backoff_seconds: 0.05
rules:
  - name: large-fill
    kind: large_fill
    min_notional: 10000
    cooldown_seconds: 0
    key: "{{rule}}:{{exec_id}}"
    sinks: [bench-hook]
"""


def receiver(conn, port_out) -> None:
    """The webhook endpoint (own process): records (exec_id, emitted, arrived), answers 200."""
    seen: list[tuple[str, float, float]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            arrived = time.time()
            details = json.loads(body)["details"]
            emitted = datetime.fromisoformat(details["ingested_at"]).timestamp()
            with lock:
                seen.append((details["exec_id"], emitted, arrived))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port_out.send(httpd.server_address[1])
    while (command := conn.recv()) != "stop":
        with lock:
            conn.send(len(seen) if command == "count" else list(seen))
    httpd.shutdown()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_worker(common: CommonSettings, rules_path: str, hook_url: str, group: str) -> subprocess.Popen:
    env = {**os.environ, "TRADEBUS_TOPIC_PREFIX": common.topic_prefix, "TRADEBUS_HTTP_PORT": "0",
           "TRADEBUS_INSTANCE_ID": "bench", "TRADEBUS_ALERTS_RULES_FILE": rules_path, "BENCH_WEBHOOK_URL": hook_url,
           "TRADEBUS_ALERTS_GROUP": group, "TRADEBUS_LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "-m", "tradebus.cli", "consume", "alerts"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_joined(common: CommonSettings, group: str, timeout: float = 60.0) -> None:
    admin = AdminClient(common.kafka.client_conf())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            members = admin.describe_consumer_groups([group])[group].result(10).members
        except Exception:
            members = []
        if any(m.assignment.topic_partitions for m in members):
            return
        time.sleep(0.3)
    raise RuntimeError("the alerts worker did not join its group")


class Publisher:
    def __init__(self, common: CommonSettings):
        names = TopicNames(common.topic_prefix)
        self.serialize = AvroRecordSerializer.registered(registry_client(common.kafka), names.value_subject(TRADES),
                                                         TRADES.value_schema)
        self.producer = PipelineProducer(common.kafka, "bench-alerts-publisher")
        self.topic = names(TRADES)
        self.base = samples.broker_trade()
        self.next = 0

    def run(self, seconds: float, every: int) -> tuple[list[str], float]:
        """Paced at RATE; returns the exec ids that should alert, and the seconds taken."""
        alerting, sent, started = [], 0, time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            while sent < int(elapsed * RATE):
                n = self.next
                self.next += 1
                sent += 1
                large = n % every == 0
                exec_id = f"x-{n}"
                record = {**self.base, "order_id": f"b-{n % 500}", "exec_id": exec_id,
                          "quantity": "1000" if large else "10", "price": "101.25",
                          "metadata": {**self.base["metadata"], "replay": False, "received_at": datetime.now(timezone.utc)}}
                self.producer.produce(self.topic, f"a-1|b-{n % 500}".encode(), self.serialize(record))
                if large:
                    alerting.append(exec_id)
            self.producer.poll(0)
            time.sleep(0.001)
        self.producer.flush(30)
        return alerting, time.monotonic() - started


def alert_write_latencies(common: CommonSettings, measured: set[str]) -> list[float]:
    """Emit -> the alert record's timestamp on tradebus.alerts.v1 (written after delivery), in ms."""
    topic = TopicNames(common.topic_prefix)(ALERTS)
    decode = AvroRecordDeserializer(registry_client(common.kafka))
    consumer = Consumer({**common.kafka.client_conf(), "group.id": f"bench-read-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False})
    out = []
    try:
        for p in range(ALERTS.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, p, low)])
            read = low
            while read < high:
                for msg in consumer.consume(1000, 5):
                    if msg.error():
                        continue
                    read = msg.offset() + 1
                    alert = decode(msg.value())
                    if alert["details"].get("exec_id") in measured:
                        out.append((msg.timestamp()[1] / 1000 - alert["event_time"].timestamp()) * 1000)
    finally:
        consumer.close()
    return sorted(out)


def summary(values: list[float], qs=(("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9), ("max", 100))) -> dict:
    return {name: round(percentile(values, q), 2) for name, q in qs}


def measure(mix: str, every: int, publisher: Publisher, server, worker_pid: int) -> tuple[dict, set[str]]:
    publisher.run(WARMUP_S, every)
    cpu_before = cpu_seconds(worker_pid)
    alerting, took = publisher.run(MEASURE_S, every)
    worker_cpu = cpu_seconds(worker_pid) - cpu_before
    wanted = set(alerting)
    deadline = time.monotonic() + DRAIN_S
    while time.monotonic() < deadline:  # let the tail arrive
        server.send("all")
        delivered = {x for x, _, _ in server.recv() if x in wanted}
        if len(delivered) == len(wanted):
            break
        time.sleep(0.5)
    server.send("all")
    latencies = sorted((arrived - emitted) * 1000 for x, emitted, arrived in server.recv() if x in wanted)
    result = {
        "mix": mix, "events_per_s": round(int(MEASURE_S * RATE) / took, 1), "alerts_expected": len(wanted),
        "alerts_delivered": len(latencies), "emit_to_delivered_ms": summary(latencies),
        "worker_cpu_ms_per_event": round(worker_cpu * 1000 / (MEASURE_S * RATE), 3),
        "worker_cpu_cores": round(worker_cpu / took, 2),
    }
    result["target_met"] = bool(result["emit_to_delivered_ms"]["p99"] <= TARGET_P99_MS and len(latencies) == len(wanted))
    print(json.dumps(result), flush=True)
    return result, wanted


def main() -> int:
    common = CommonSettings.from_env(Env({**os.environ, "TRADEBUS_TOPIC_PREFIX": f"bench-alerts-{uuid.uuid4().hex[:6]}.",
                                          "TRADEBUS_HTTP_PORT": "0"}))
    ensure_topics(common, topics=[TRADES, STATUS, DLQ, ALERTS])
    threads = int(os.environ.get("BENCH_ALERTS_WEBHOOK_THREADS", "4"))
    server, server_end = multiprocessing.Pipe()
    port_in, port_out = multiprocessing.Pipe()
    server_proc = multiprocessing.get_context("fork").Process(target=receiver, args=(server_end, port_out), daemon=True)
    server_proc.start()
    hook_url = f"http://127.0.0.1:{port_in.recv()}/hook"
    group = f"bench-alerts-{uuid.uuid4().hex[:6]}"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as rules:
        rules.write(RULES.format(threads=threads))
    load_before = os.getloadavg()
    worker = start_worker(common, rules.name, hook_url, group)
    mixes, measured = [], set()
    try:
        wait_joined(common, group)
        publisher = Publisher(common)
        for mix, every in MIXES:
            print(f"{mix}: warm-up {WARMUP_S:.0f}s, then {MEASURE_S:.0f}s at {RATE:.0f} events/s", flush=True)
            result, wanted = measure(mix, every, publisher, server, worker.pid)
            mixes.append(result)
            measured |= wanted
        worker_rss = peak_rss_mb(worker.pid)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            _, err = worker.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            _, err = worker.communicate()
        os.unlink(rules.name)
        server.send("stop")
        server_proc.join(5)
    written = alert_write_latencies(common, measured)
    names = TopicNames(common.topic_prefix)
    AdminClient(common.kafka.client_conf()).delete_topics([names(t) for t in (TRADES, STATUS, DLQ, ALERTS)])
    results = {
        "rate_per_s": RATE, "measured_seconds_per_mix": MEASURE_S, "webhook_threads": threads, "mixes": mixes,
        "emit_to_alert_written_ms": summary(written, (("p50", 50), ("p99", 99))),
        "target_p99_ms": TARGET_P99_MS, "worker_exit_code": worker.returncode,
        "worker_peak_rss_mb": round(worker_rss, 1), "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before], "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    rows = "\n".join(
        f"| {m['mix']} ({m['alerts_expected']} alerts) | {m['alerts_delivered']} | {m['emit_to_delivered_ms']['p50']} | "
        f"{m['emit_to_delivered_ms']['p90']} | **{m['emit_to_delivered_ms']['p99']}** ({'met' if m['target_met'] else 'NOT met'}) | "
        f"{m['emit_to_delivered_ms']['max']} | {m['worker_cpu_ms_per_event']} ms / {m['worker_cpu_cores']} |" for m in mixes)
    markdown = f"""Emit -> alert delivered (webhook received), {RATE:.0f} events/s into anthid.broker-trades.unique.v1,
{MEASURE_S:.0f} s per mix after a {WARMUP_S:.0f} s warm-up; target p99 <= {TARGET_P99_MS:.0f} ms.

| mix | delivered | p50 ms | p90 ms | p99 ms | max ms | worker CPU per event / cores |
|---|---|---|---|---|---|---|
{rows}

Emit -> alert record on tradebus.alerts.v1 (after delivery), all alerts: p50 {results['emit_to_alert_written_ms']['p50']} ms,
p99 {results['emit_to_alert_written_ms']['p99']} ms. Worker peak RSS {results['worker_peak_rss_mb']} MB.

One `tradebus consume alerts` process (one large_fill rule, cooldown 0, a webhook sink with {threads} delivery threads),
the publisher and the webhook server each in their own process, on {os.cpu_count()} cores shared with other work
(load average before / after: {', '.join(map(str, results['load_average_before']))} / {', '.join(map(str, results['load_average_after']))}).
Emit = metadata.received_at, set just before producing.
"""
    write_results("alerts_latency", results, markdown)
    print(markdown)
    if worker.returncode != 0:
        print(err[-3000:], file=sys.stderr)
    return 0 if worker.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
