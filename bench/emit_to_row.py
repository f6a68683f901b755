"""Emit-to-row latency (issue 5 §6): the simulator's emit to the row visible
in PostgreSQL at 1,000 events/s, through the real chain, about 1-1.5 minutes.

    tradebus sim anthid --rate 1000          (received_at = emit time)
      -> tradebus produce anthid             (plaintext gRPC, linger.ms=1)
      -> tradebus consume dedup              (Kafka transactions)
      -> tradebus consume store              (PostgreSQL, a fresh schema)

Each is its own process (tradebus.tools.supervisor), on topics and consumer
groups of the benchmark's own, with low-latency schedules: dedup and store
flush DEDUP_FLUSH_MS / STORE_FLUSH_MS after a batch's first record.

Where "visible" is taken, for every order_events row whose emit falls in
the measured window (after a warm-up):

* **visible** (the headline): a statement-level AFTER INSERT trigger on
  order_events, added by this benchmark to its own schema, sends
  pg_notify(max(stored_at) of the statement's new rows); PostgreSQL delivers
  a notification only after the transaction commits, so its arrival at a
  LISTEN connection in this process is when another client can see the rows.
  The store writes one batch per transaction over one connection, so each
  row belongs to the first notification whose max(stored_at) >= its own.
* **written**: stored_at (clock_timestamp() when the row was inserted, inside
  the transaction, before the commit) - received_at, from the row itself.
* the stages before it from the row and the topics: ingested_at (the
  producer received the event), the raw and the unique topic's record
  timestamps (producer and dedup produce() calls; Kafka timestamps are ms).

Same host, same clock for all of them. Target: emit-to-visible p99 <= 50 ms.
BENCH_E2R_DEDUP_FLUSH_MS, BENCH_E2R_STORE_FLUSH_MS (5) and BENCH_E2R_LINGER_MS
(1) change the schedules, to compare.

    .venv/bin/python -m bench.emit_to_row
"""

from __future__ import annotations

import bisect
import json
import os
import socket
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from bench.common import percentile, write_results, free_port, wait_port
from consumers.store import Store
from tradebus.config import CommonSettings, Env
from tradebus.serde import AvroRecordDeserializer, registry_client
from tradebus.tools.supervisor import ChildSpec, Supervisor, wait_http_ready
from tradebus.topics import BROKER_ORDERS, UNIQUE_TOPICS, TopicNames
from tradebus.topics_cli import ensure_topics

PG_URL = "postgresql://tradebus:tradebus@127.0.0.1:5432/tradebus"
API_KEY = "bench-e2r-key-0001"
RATE = 1000.0
WARMUP_S = 5.0
MEASURE_S = 30.0
DRAIN_S = 3.0
DEDUP_FLUSH_MS = int(os.environ.get("BENCH_E2R_DEDUP_FLUSH_MS", "5"))
STORE_FLUSH_MS = int(os.environ.get("BENCH_E2R_STORE_FLUSH_MS", "5"))
LINGER_MS = int(os.environ.get("BENCH_E2R_LINGER_MS", "1"))
TARGET_P99_MS = 50.0
CHANNEL = "bench_order_events"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

TRIGGER_SQL = f"""
CREATE FUNCTION bench_notify_order_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE newest numeric;
BEGIN
    SELECT extract(epoch FROM max(stored_at)) INTO newest FROM inserted;
    IF newest IS NOT NULL THEN
        PERFORM pg_notify('{CHANNEL}', newest::text);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER bench_visible AFTER INSERT ON order_events REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION bench_notify_order_events();
"""


def micros(value: datetime) -> int:
    return (value - EPOCH) // timedelta(microseconds=1)


class Listener(threading.Thread):
    """LISTEN on its own connection; (arrival time, max stored_at) per commit."""

    def __init__(self, url: str):
        super().__init__(name="bench-e2r-listen", daemon=True)
        self.conn = psycopg.connect(url, autocommit=True)
        self.conn.execute(f"LISTEN {CHANNEL}")
        self.commits: list[tuple[float, float]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for note in self.conn.notifies(timeout=0.2):
                self.commits.append((time.time(), float(note.payload)))

    def stop(self) -> None:
        self.done.set()
        self.join(5)
        self.conn.close()


class Schema:
    """A fresh PostgreSQL schema, migrated, with the notify trigger; dropped afterwards."""

    def __init__(self):
        self.name = f"bench_e2r_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {self.name}")
        self.url = f"{PG_URL}?options=-csearch_path%3D{self.name}"
        with Store.open(self.url):  # the store's migrations, so the trigger has its table
            pass
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(TRIGGER_SQL)

    def rows(self, start: float, end: float) -> list[tuple]:
        with psycopg.connect(self.url) as conn:
            return conn.execute(
                "SELECT order_id, command_seq, order_status, filled_quantity, received_at, ingested_at, stored_at "
                "FROM order_events WHERE NOT replay AND received_at >= to_timestamp(%s) AND received_at < to_timestamp(%s)",
                (start, end)).fetchall()

    def drop(self) -> None:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {self.name} CASCADE")


def topic_timestamps(common: CommonSettings, topic: str, partitions: int, start: float, end: float) -> dict[tuple, float]:
    """Order identity -> the Kafka record timestamp (s) for records emitted in [start, end)."""
    decode = AvroRecordDeserializer(registry_client(common.kafka))
    consumer = Consumer({**common.kafka.client_conf(), "group.id": f"bench-e2r-read-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    out: dict[tuple, float] = {}
    try:
        for partition in range(partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, partition, low)])
            position, give_up = low - 1, time.monotonic() + 15
            # Stop at the last offset, or when nothing more comes (a transactional
            # topic ends with a commit marker, which is never delivered).
            while position < high - 1 and time.monotonic() < give_up:
                batch = consumer.consume(2000, 0.5)
                if not batch and position >= low:
                    break
                for msg in batch:
                    if msg.error():
                        continue
                    position = msg.offset()
                    record = decode(msg.value())
                    if start <= record["received_at"].timestamp() < end and not record["metadata"]["replay"]:
                        key = (record["order_id"], record["command_seq"], record["order_status"],
                               record["filled_quantity"], micros(record["received_at"]))
                        out.setdefault(key, msg.timestamp()[1] / 1000)
    finally:
        consumer.close()
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def broker_and_database_pids() -> dict[str, list[int]]:
    """The local Kafka broker (kafka.Kafka) and every PostgreSQL process, by command line."""
    found: dict[str, list[int]] = {"kafka": [], "postgresql": []}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"kafka.Kafka" in cmdline:
            found["kafka"].append(int(entry.name))
        elif cmdline.startswith(b"postgres") or b"/bin/postgres" in cmdline:
            found["postgresql"].append(int(entry.name))
    return found


def batch_seconds(port: int, worker: str) -> tuple[float, float]:
    """(sum, count) of tradebus_worker_batch_seconds for a worker, from its /metrics."""
    total = count = 0.0
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("tradebus_worker_batch_seconds_sum{") and f'worker="{worker}"' in line:
                total = float(line.rsplit(" ", 1)[1])
            elif line.startswith("tradebus_worker_batch_seconds_count{") and f'worker="{worker}"' in line:
                count = float(line.rsplit(" ", 1)[1])
    return total, count


def summary(values: list[float]) -> dict:
    values = sorted(values)
    return {"samples": len(values), "p50_ms": round(percentile(values, 50), 2), "p90_ms": round(percentile(values, 90), 2),
            "p99_ms": round(percentile(values, 99), 2), "max_ms": round(values[-1], 2) if values else None}


def plan(prefix: str, schema_url: str, sim_port: int, ports: dict[str, int]) -> list[ChildSpec]:
    group = prefix.rstrip(".")
    return [
        ChildSpec("consume-dedup", ["consume", "dedup"],
                  {"TRADEBUS_DEDUP_GROUP": f"{group}-dedup", "TRADEBUS_DEDUP_FLUSH_MS": str(DEDUP_FLUSH_MS)},
                  http_port=ports["dedup"]),
        ChildSpec("consume-store", ["consume", "store"],
                  {"TRADEBUS_STORE_GROUP": f"{group}-store", "TRADEBUS_STORE_FLUSH_MS": str(STORE_FLUSH_MS),
                   "TRADEBUS_DATABASE_URL": schema_url}, http_port=ports["store"]),
        ChildSpec("sim-anthid", ["sim", "anthid", "--port", str(sim_port), "--rate", str(RATE), "--seed", "1",
                                 "--heartbeat-seconds", "1", "--api-key", API_KEY]),
        ChildSpec("produce-anthid", ["produce", "anthid"],
                  {"TRADEBUS_ANTHID_TARGET": f"127.0.0.1:{sim_port}", "TRADEBUS_ANTHID_API_KEY": API_KEY,
                   "TRADEBUS_ANTHID_TLS": "false", "TRADEBUS_ANTHID_ORDER_DELIVERY": "LIVE"},
                  http_port=ports["producer"]),
    ]


def run_chain(prefix: str, base_env: dict, schema: Schema) -> dict:
    """Start the chain, warm up, measure, stop intake, let the workers drain, stop everything."""
    ports = {"dedup": free_port(), "store": free_port(), "producer": free_port()}
    sim_port = free_port()
    logs = Path(tempfile.mkdtemp(prefix="bench-e2r-"))
    sup = Supervisor(logs, base_env)
    children, codes, out = {}, {}, {"logs": str(logs)}
    began = time.monotonic()
    try:
        for spec in plan(prefix, schema.url, sim_port, ports):
            children[spec.name] = sup.start(spec)
            if spec.name == "sim-anthid":
                wait_port(sim_port)
            elif spec.http_port and not wait_http_ready(spec.http_port, 60):
                raise RuntimeError(f"{spec.name} not ready after 60 s (log: {logs / (spec.name + '.log')})")
        print(f"chain up after {time.monotonic() - began:.0f}s; warm-up {WARMUP_S:.0f}s, "
              f"then {MEASURE_S:.0f}s at {RATE:.0f} events/s", flush=True)
        time.sleep(WARMUP_S)
        watched = {name: [child.process.pid] for name, child in children.items()} | broker_and_database_pids()
        workers = {"dedup": ports["dedup"], "store": ports["store"]}
        cpu0 = {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in watched.items()}
        batches0 = {w: batch_seconds(port, w) for w, port in workers.items()}
        start = time.time()
        time.sleep(MEASURE_S)
        end = time.time()
        out["start"], out["end"] = start, end
        out["cpu"] = {name: round((sum(cpu_seconds(pid) for pid in pids) - cpu0[name]) / (end - start), 2)
                      for name, pids in watched.items()}
        out["batches"] = {}
        for w, port in workers.items():
            (s1, n1), (s0, n0) = batch_seconds(port, w), batches0[w]
            out["batches"][w] = {"batches_per_s": round((n1 - n0) / (end - start), 1),
                                 "mean_batch_ms": round((s1 - s0) * 1000 / (n1 - n0), 2) if n1 > n0 else None}
        for name in ("produce-anthid", "sim-anthid"):  # intake stops; the workers drain what is in flight
            codes[name] = sup.stop(children[name], 30)
        time.sleep(DRAIN_S)
    finally:
        codes.update(sup.stop_all(40))
        out["codes"] = codes
    return out


def main() -> int:
    began = time.monotonic()
    load_before = os.getloadavg()
    prefix = f"bench-e2r-{uuid.uuid4().hex[:6]}."
    base_env = {"TRADEBUS_TOPIC_PREFIX": prefix, "TRADEBUS_KAFKA_LINGER_MS": str(LINGER_MS),
                "TRADEBUS_INSTANCE_ID": "bench-e2r", "TRADEBUS_LOG_LEVEL": "WARNING"}
    common = CommonSettings.from_env(Env({**os.environ, **base_env, "TRADEBUS_HTTP_PORT": "0"}))
    names = TopicNames(prefix)
    schema = None
    try:
        ensure_topics(common)
        schema = Schema()
        listener = Listener(schema.url)
        listener.start()
        try:
            chain = run_chain(prefix, base_env, schema)
        finally:
            listener.stop()
        load_after = os.getloadavg()
        start, end, codes, cpu, batches = chain["start"], chain["end"], chain["codes"], chain["cpu"], chain["batches"]
        rows = schema.rows(start, end)
        unique_orders = UNIQUE_TOPICS[BROKER_ORDERS.name]
        raw_ts = topic_timestamps(common, names(BROKER_ORDERS), BROKER_ORDERS.partitions, start, end)
        unique_ts = topic_timestamps(common, names(unique_orders), unique_orders.partitions, start, end)
    finally:
        if schema is not None:
            schema.drop()
        admin = AdminClient(common.kafka.client_conf())
        doomed = [n for n in admin.list_topics(timeout=10).topics if n.startswith(prefix)]
        if doomed:
            admin.delete_topics(doomed)

    commits = sorted(listener.commits, key=lambda c: c[1])
    newest = [c[1] for c in commits]
    visible, written, ingested, raw, unique, commit_wait = [], [], [], [], [], []
    unmatched = 0
    for order_id, seq, status, filled, received_at, ingested_at, stored_at in rows:
        emit = received_at.timestamp()
        stored = stored_at.timestamp()
        written.append((stored - emit) * 1000)
        ingested.append((ingested_at.timestamp() - emit) * 1000)
        key = (order_id, seq, status, filled, micros(received_at))
        if key in raw_ts:
            raw.append((raw_ts[key] - emit) * 1000)
        if key in unique_ts:
            unique.append((unique_ts[key] - emit) * 1000)
        i = bisect.bisect_left(newest, stored - 1e-6)  # 1 us: the payload is the same instant as text
        if i < len(commits):
            visible.append((commits[i][0] - emit) * 1000)
            commit_wait.append((commits[i][0] - stored) * 1000)
        else:
            unmatched += 1

    results = {
        "rate_per_s": RATE, "warmup_s": WARMUP_S, "measured_s": MEASURE_S,
        "schedules": {"dedup_flush_ms": DEDUP_FLUSH_MS, "store_flush_ms": STORE_FLUSH_MS, "linger_ms": LINGER_MS},
        "orders_in_window_raw_topic": len(raw_ts), "orders_in_window_unique_topic": len(unique_ts),
        "order_rows_in_window": len(rows), "rows_without_commit_notification": unmatched,
        "emit_to_visible_ms": summary(visible),
        "emit_to_written_ms": summary(written),
        "written_to_visible_ms": summary(commit_wait),
        "stages_ms": {"emit_to_producer_received": summary(ingested), "emit_to_raw_topic_timestamp": summary(raw),
                      "emit_to_unique_topic_timestamp": summary(unique)},
        "cpu_cores_while_measured": cpu, "worker_batches": batches,
        "commits_notified": len(commits), "exit_codes": codes, "target_p99_ms": TARGET_P99_MS,
        "cpus": os.cpu_count(), "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "duration_s": round(time.monotonic() - began, 1),
    }
    complete = len(rows) == len(raw_ts) == len(unique_ts) and unmatched == 0
    results["complete"] = complete
    results["clean_exits"] = all(code == 0 for code in codes.values())
    results["target_met"] = bool(results["emit_to_visible_ms"]["p99_ms"] <= TARGET_P99_MS and complete)
    v, w, c = results["emit_to_visible_ms"], results["emit_to_written_ms"], results["written_to_visible_ms"]
    s = results["stages_ms"]

    def row(label: str, m: dict, note: str = "") -> str:
        return f"| {label} | {m['p50_ms']} | {m['p90_ms']} | {m['p99_ms']} | {m['max_ms']} | {note} |"

    verdict = "met" if results["target_met"] else "NOT met"
    markdown = f"""Emit -> row visible in PostgreSQL, {RATE:,.0f} events/s from `tradebus sim anthid` through
`tradebus produce anthid` -> `tradebus consume dedup` (transactions) -> `tradebus consume store` (PostgreSQL),
{MEASURE_S:.0f} s measured after a {WARMUP_S:.0f} s warm-up: the {len(rows):,} order_events rows of the broker-order
versions emitted in the window (raw topic {len(raw_ts):,}, unique topic {len(unique_ts):,}:
{'complete' if complete else '**INCOMPLETE**'}). Target p99 <= {TARGET_P99_MS:.0f} ms.

| emit -> | p50 ms | p90 ms | p99 ms | max ms | |
|---|---|---|---|---|---|
{row("producer received (ingested_at)", s["emit_to_producer_received"], "simulator + gRPC")}
{row("raw topic record timestamp", s["emit_to_raw_topic_timestamp"], "producer produce(); ms resolution")}
{row("unique topic record timestamp", s["emit_to_unique_topic_timestamp"], "dedup produce(), before its commit; ms")}
{row("row written (stored_at)", w, "inside the store's transaction")}
{row("**row visible** (commit notification)", v, f"**{verdict}**")}

Written -> visible (the store's remaining transaction + commit + notification): p50 {c['p50_ms']} ms,
p99 {c['p99_ms']} ms. Batches: dedup {batches['dedup']['batches_per_s']}/s (transactions, mean
{batches['dedup']['mean_batch_ms']} ms each), store {batches['store']['batches_per_s']}/s (mean
{batches['store']['mean_batch_ms']} ms each). CPU while measured, in cores: {', '.join(f'{k} {v}' for k, v in cpu.items())}
(of {os.cpu_count()}): the chain alone nearly fills the machine, and the Kafka broker is its busiest process. Each dedup
transaction makes the broker write commit markers to every partition it touched (unique topics, changelog) and
commit offsets; measured apart on this broker that is about 5 ms of broker CPU per transaction plus about 0.8 ms per
partition and 4 ms for the offsets, so a transaction every few milliseconds costs the broker most of a core, and every
stage waits for CPU. Fewer, larger transactions (a longer TRADEBUS_DEDUP_FLUSH_MS) cost less CPU but add their own wait.

How: each process of the chain runs on its own (tradebus.tools.supervisor), topics and groups of the benchmark's
own, `TRADEBUS_KAFKA_LINGER_MS={LINGER_MS}`, `TRADEBUS_DEDUP_FLUSH_MS={DEDUP_FLUSH_MS}`,
`TRADEBUS_STORE_FLUSH_MS={STORE_FLUSH_MS}`, `TRADEBUS_ANTHID_ORDER_DELIVERY=LIVE`. Emit = the simulator's
received_at. Visible = arrival at a LISTEN connection of the notification that a statement-level AFTER INSERT
trigger on order_events (the benchmark's addition to its own schema) sends; PostgreSQL delivers it only after the
commit. Written = stored_at (clock_timestamp() at insert). One clock. {os.cpu_count()} cores shared with Kafka,
the registry, PostgreSQL and any other work (load average before / after: {', '.join(map(str, results['load_average_before']))} /
{', '.join(map(str, results['load_average_after']))}). Exit codes: {', '.join(f'{k} {v}' for k, v in codes.items())}.
"""
    write_results("emit_to_row", results, markdown)
    print(markdown)
    print(json.dumps({k: results[k] for k in ("emit_to_visible_ms", "complete", "duration_s")}))
    if not results["clean_exits"]:
        print(f"children logs: {chain['logs']}")
    return 0 if results["clean_exits"] and rows else 1


if __name__ == "__main__":
    raise SystemExit(main())
