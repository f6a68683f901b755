"""HTI producer benchmark (issue 3 §4), about 2-3 minutes.

1. Throughput: the simulator (its own process) emits as fast as it can; one
   producer (this process) reads the SSE stream and writes to Kafka; the
   rate is acknowledged ideas per second. Because the simulator (a Python
   server building every idea) can be the slower side, a feeder process also
   streams pre-built idea events as fast as the connection takes them: that
   is the producer's own ceiling. Beside it, in the same run, the raw
   fastavro encoding rate of the very records the producer published, and
   the producer's CPU-only pipeline (SSE parse + JSON + convert + encode).
   Target: producer >= half the raw fastavro rate.
2. Latency at 100 and 1,000 ideas/s: the simulator ledger's emitted_at to
   the Kafka acknowledgement (delivery callback), matched by
   (idea_id, LAST_UPDATE). Target p99 <= 10 ms at 1,000/s.
3. Memory with Kafka stopped: `tradebus produce hti` as its own process,
   pointed at a bootstrap where nothing listens (127.0.0.1:1), while the
   simulator bursts at 10x the rate. Peak RSS = VmHWM. Target <= 150 MB.

    .venv/bin/python -m bench.hti_producer
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import fastavro

from bench.common import REPO, delete_topics_at_exit, peak_rss_mb, percentile, rss_mb, write_results, free_port, wait_port
from producers.hti.convert import idea_record, parse_json_object, zone_for
from producers.hti.run import HtiProducer
from producers.hti.settings import HtiProducerSettings
from producers.hti.sse import SseParser
from tradebus.config import CommonSettings, Env
from tradebus.publishing import Publisher
from tradebus.serde import AvroRecordSerializer, parsed_schema
from tradebus.topics import DLQ, HTI_IDEAS, STATUS
from tradebus.topics_cli import ensure_topics

API_CODE = "bench-hti-code-0001"
SIM_MAX_S, FEEDER_S, LATENCY_S, BURST_S, WARMUP_S = 10.0, 10.0, 12.0, 20.0, 2.0
SIM_OFFERED_RATE = 20_000.0
LATENCY_RATES = (100.0, 1000.0)
BURST_RATE = 10 * 1000.0
FEEDER_IDEAS = 2_000  # distinct base ideas, renamed per round
TARGETS = {"throughput_ratio": 0.5, "p99_ms_at_1000": 10.0, "peak_rss_mb": 150.0}


class Simulator:
    """`tradebus sim hti` in its own process (its own GIL), with a ledger file."""

    def __init__(self, rate: float, ledger: Path):
        self.port = free_port()
        self.ledger = ledger
        env = {**os.environ, "TRADEBUS_LOG_LEVEL": "WARNING"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tradebus.cli", "sim", "hti", "--port", str(self.port), "--rate", str(rate), "--seed", "1",
             "--api-code", API_CODE, "--request-limit", "100000", "--ledger", str(ledger)],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def emitted(self) -> dict[tuple[str, str], float]:
        """(idea_id, LAST_UPDATE) -> emitted_at, from the ledger."""
        out = {}
        with open(self.ledger, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    entry = json.loads(line)
                    if entry["kind"] == "idea":
                        out[(entry["idea_id"], entry["LAST_UPDATE"])] = entry["emitted_at"]
        return out

    def ledger_texts(self, limit: int) -> list[str]:
        texts = []
        with open(self.ledger, encoding="utf-8") as handle:
            for line in handle:
                entry = json.loads(line)
                if entry["kind"] == "idea":
                    texts.append(entry["json"])
                    if len(texts) >= limit:
                        break
        return texts


class Feeder:
    """A bare HTI endpoint whose stream sends pre-built, all-distinct idea
    events as fast as the socket takes them (history is empty)."""

    def __init__(self, count: int):
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.hti_producer", "--feeder", str(self.port), str(count)],
                                     cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, timeout=90)
        self.url = f"http://127.0.0.1:{self.port}"

    stop = Simulator.stop

    @staticmethod
    def serve(port: int, count: int) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from simulators.hti.ideas import IdeaGenerator

        generator = IdeaGenerator(1)
        base = [generator.next() for _ in range(count)]
        profile = {"account_name": "BENCH", "request_limit_per_minute": 100000}

        def events():
            """Endless distinct versions: round n renames every idea id to <id>~n."""
            round_ = 0
            while True:
                for start in range(0, len(base), 100):
                    yield b"".join(b"event: idea\ndata: %s\n\n" % v.text.replace(v.idea_id, f"{v.idea_id}~{round_}").encode()
                                   for v in base[start:start + 100])
                round_ += 1

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # as the simulator

            def do_GET(self):  # noqa: N802
                path = self.path.split("?")[0]
                if path.endswith("/stream"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(b'event: ready\ndata: {"poll_seconds": 2.0}\n\n')
                    self.wfile.flush()
                    try:
                        for chunk in events():
                            self.wfile.write(chunk)
                    except OSError:
                        return  # the client left
                body = json.dumps({"status": "ok", "profile": profile, "count": 0, "limit": 50, "ideas": []}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.daemon_threads = True
        server.serve_forever()


def common_settings(prefix: str, **env) -> CommonSettings:
    return CommonSettings.from_env(Env({**{k: v for k, v in os.environ.items() if k.startswith("TRADEBUS_")},
                                        "TRADEBUS_TOPIC_PREFIX": prefix, "TRADEBUS_INSTANCE_ID": "bench",
                                        "TRADEBUS_HTTP_PORT": "0", **env}))


def producer_settings(url: str) -> HtiProducerSettings:
    return HtiProducerSettings.from_env(Env({"TRADEBUS_HTI_SERVER_URL": url, "TRADEBUS_HTI_API_CODE": API_CODE}),
                                        shutdown_timeout_s=60)


class InProcessProducer:
    """HtiProducer on a thread of this process; every ack recorded with its time."""

    def __init__(self, common: CommonSettings, url: str):
        self.acks: list[tuple[str, str, float, float]] = []  # (idea_id, LAST_UPDATE, received, acked)
        self.stop_event = threading.Event()
        self.publisher = Publisher(common, "hti", [HTI_IDEAS], stop=self.stop_event)
        self.producer = HtiProducer(producer_settings(url), self.publisher, self.stop_event,
                                    on_idea_ack=lambda i, u, r, a: self.acks.append((i, u, r, a)))
        self.thread = threading.Thread(target=self.producer.run, name="hti-bench-producer", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.producer.stream_open:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the producer did not connect")
            time.sleep(0.02)

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(90)

    def acked_between(self, start: float, end: float) -> int:
        return sum(1 for _, _, _, t in self.acks if start <= t < end)


def steady_rate(producer: InProcessProducer, seconds: float) -> tuple[float, int]:
    time.sleep(WARMUP_S)
    start = time.time()
    time.sleep(seconds)
    end = time.time()
    count = producer.acked_between(start, end)
    return count / (end - start), count


def measure_throughput_sim(common) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        sim = Simulator(SIM_OFFERED_RATE, Path(tmp) / "ledger.jsonl")
        try:
            producer = InProcessProducer(common, sim.url)
            start = time.time()
            rate, count = steady_rate(producer, SIM_MAX_S)
            producer.stop()
            emitted = sim.emitted()
            window = [t for t in emitted.values() if start + WARMUP_S <= t < start + WARMUP_S + SIM_MAX_S]
            texts = sim.ledger_texts(20_000)
        finally:
            sim.stop()
    return {"ideas_per_s": rate, "acked_in_window": count, "simulator_emitted_per_s": len(window) / SIM_MAX_S,
            "offered_rate": SIM_OFFERED_RATE}, texts


def measure_throughput_feeder(common) -> dict:
    feeder = Feeder(FEEDER_IDEAS)
    try:
        producer = InProcessProducer(common, feeder.url)
        rate, count = steady_rate(producer, FEEDER_S)
        producer.stop()
    finally:
        feeder.stop()
    return {"ideas_per_s": rate, "acked_in_window": count}


def measure_encoding(texts: list[str]) -> dict:
    """Raw fastavro on the same records, and our CPU-only pipeline on the same texts."""
    zone = zone_for("America/New_York")
    meta = {"source": "hti", "producer_instance": "bench", "received_at": time.time(), "upstream_event": "idea", "replay": False}
    from datetime import datetime, timezone

    meta["received_at"] = datetime.now(timezone.utc)
    records = [idea_record(parse_json_object(t), t, zone, meta) for t in texts]
    schema = parsed_schema(HTI_IDEAS.value_schema)
    best = 0.0
    for _ in range(3):
        started = time.perf_counter()
        for record in records:
            buffer = io.BytesIO()
            fastavro.schemaless_writer(buffer, schema, record)
            buffer.getvalue()
        best = max(best, len(records) / (time.perf_counter() - started))
    stream = b"".join(b"event: idea\ndata: %s\n\n" % t.encode() for t in texts)
    serializer = AvroRecordSerializer(1, HTI_IDEAS.value_schema)
    pipeline = 0.0
    for _ in range(2):
        parser = SseParser()
        started = time.perf_counter()
        done = 0
        for offset in range(0, len(stream), 16384):
            for event in parser.feed(stream[offset:offset + 16384]):
                serializer(idea_record(parse_json_object(event.data), event.data, zone, meta))
                done += 1
        pipeline = max(pipeline, done / (time.perf_counter() - started))
    return {"raw_fastavro_per_s": best, "cpu_pipeline_per_s": pipeline, "records": len(records),
            "mean_avro_bytes": sum(len(serializer(r)) for r in records[:2000]) / min(2000, len(records))}


def measure_latency(common, rate: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        sim = Simulator(rate, Path(tmp) / "ledger.jsonl")
        try:
            producer = InProcessProducer(common, sim.url)
            connected = time.time()
            time.sleep(WARMUP_S + LATENCY_S)
            producer.stop()
            emitted = sim.emitted()
        finally:
            sim.stop()
    latencies, transport, inside = [], [], []
    for idea_id, last_update, received_at, acked_at in producer.acks:
        emitted_at = emitted.get((idea_id, last_update))
        if emitted_at is not None and emitted_at >= connected + WARMUP_S:  # stream ideas after the warm-up
            latencies.append((acked_at - emitted_at) * 1000)
            transport.append((received_at - emitted_at) * 1000)  # simulator -> SSE -> our parser
            inside.append((acked_at - received_at) * 1000)  # conversion, queue, broker, ack
    return {"rate": rate, "samples": len(latencies), "p50_ms": percentile(latencies, 50),
            "p99_ms": percentile(latencies, 99), "max_ms": max(latencies) if latencies else float("nan"),
            "emit_to_receipt": {"p50_ms": percentile(transport, 50), "p99_ms": percentile(transport, 99)},
            "receipt_to_ack": {"p50_ms": percentile(inside, 50), "p99_ms": percentile(inside, 99)}}


def measure_memory_kafka_down(prefix: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        sim = Simulator(BURST_RATE, Path(tmp) / "ledger.jsonl")
        http_port = free_port()
        env = {**os.environ, "TRADEBUS_HTI_SERVER_URL": sim.url, "TRADEBUS_HTI_API_CODE": API_CODE,
               "TRADEBUS_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "TRADEBUS_TOPIC_PREFIX": prefix,
               "TRADEBUS_HTTP_PORT": str(http_port), "TRADEBUS_LOG_LEVEL": "WARNING", "TRADEBUS_SHUTDOWN_TIMEOUT_SECONDS": "1"}
        proc = subprocess.Popen([sys.executable, "-m", "tradebus.cli", "produce", "hti"], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples = []
        try:
            started = time.monotonic()
            while time.monotonic() - started < BURST_S:
                time.sleep(1.0)
                if proc.poll() is not None:
                    raise RuntimeError(f"the producer exited with {proc.returncode} while Kafka was down")
                samples.append((round(time.monotonic() - started, 1), rss_mb(proc.pid)))
            peak = peak_rss_mb(proc.pid)
            queue, waits = scrape(http_port, "tradebus_producer_queue_messages"), scrape(http_port, "tradebus_backpressure_waits_total")
            emitted = len(sim.emitted())
        finally:
            proc.send_signal(signal.SIGTERM)  # blocked in produce(): the first signal cannot end it
            time.sleep(0.5)
            proc.send_signal(signal.SIGTERM)  # the second exits (1): records are left unsent by design
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
            sim.stop()
    rss = [mb for _, mb in samples]
    return {"burst_rate": BURST_RATE, "seconds": BURST_S, "peak_rss_mb": peak, "rss_at_10s_mb": rss[min(9, len(rss) - 1)],
            "rss_at_end_mb": rss[-1], "rss_samples_mb": samples, "queued_records": queue, "backpressure_waits": waits,
            "simulator_emitted": emitted, "exit_code_after_two_sigterms": proc.returncode}


def scrape(port: int, name: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(name + " ") or line.startswith(name + "{"):
                    return float(line.rsplit(" ", 1)[1])
    except OSError:
        return None
    return None


def main() -> int:
    prefix = f"bench-hti-{uuid.uuid4().hex[:8]}."
    common = common_settings(prefix)
    ensure_topics(common, topics=[HTI_IDEAS, STATUS, DLQ])
    delete_topics_at_exit(common.kafka, prefix)
    began = time.monotonic()
    load_at_start = os.getloadavg()[0]
    print("HTI producer benchmark: throughput from the simulator ...", flush=True)
    sim_throughput, texts = measure_throughput_sim(common)
    print("  ... from the feeder (producer ceiling) ...", flush=True)
    feeder_throughput = measure_throughput_feeder(common)
    print("  ... raw fastavro on the same records ...", flush=True)
    encoding = measure_encoding(texts)
    latency = {}
    for rate in LATENCY_RATES:
        print(f"  ... emit->ack latency at {rate:g} ideas/s ...", flush=True)
        latency[f"{rate:g}"] = measure_latency(common, rate)
    # The same at 1,000/s with linger.ms=1 instead of the default 5 (TRADEBUS_KAFKA_LINGER_MS), for comparison.
    print("  ... emit->ack latency at 1000 ideas/s with linger.ms=1 ...", flush=True)
    latency["1000, linger.ms=1"] = measure_latency(common_settings(prefix, TRADEBUS_KAFKA_LINGER_MS="1"), 1000.0)
    print(f"  ... peak RSS with Kafka stopped, simulator at {BURST_RATE:g}/s ...", flush=True)
    memory = measure_memory_kafka_down(prefix)

    producer_rate = max(sim_throughput["ideas_per_s"], feeder_throughput["ideas_per_s"])
    ratio = producer_rate / encoding["raw_fastavro_per_s"]
    p99 = latency["1000"]["p99_ms"]
    met = {"throughput_ratio": ratio >= TARGETS["throughput_ratio"], "p99_ms_at_1000": p99 <= TARGETS["p99_ms_at_1000"],
           "peak_rss_mb": memory["peak_rss_mb"] <= TARGETS["peak_rss_mb"]}
    results = {"benchmark": "hti_producer", "duration_s": round(time.monotonic() - began, 1), "cpus": os.cpu_count(),
               "load_average_1m_at_start_end": [load_at_start, os.getloadavg()[0]],
               "throughput": {"simulator": sim_throughput, "feeder": feeder_throughput, "producer_ideas_per_s": producer_rate,
                              "ratio_to_raw_fastavro": ratio},
               "encoding": encoding, "latency": latency, "memory_kafka_down": memory, "targets": TARGETS, "met": met,
               "settings": {"linger_ms": common.kafka.linger_ms, "acks": "all", "idempotent": True,
                            "queue_max_messages": common.kafka.queue_max_messages}}
    rows = [
        ("producer, simulator -> Kafka ack", f"{sim_throughput['ideas_per_s']:,.0f} ideas/s",
         f"simulator emitted {sim_throughput['simulator_emitted_per_s']:,.0f}/s"),
        ("producer, feeder -> Kafka ack (ceiling)", f"{feeder_throughput['ideas_per_s']:,.0f} ideas/s", ""),
        ("raw fastavro encode, same records", f"{encoding['raw_fastavro_per_s']:,.0f} records/s", ""),
        ("producer CPU pipeline (SSE+JSON+convert+encode)", f"{encoding['cpu_pipeline_per_s']:,.0f} ideas/s", "no I/O"),
        ("producer / raw fastavro", f"{ratio:.2f}", f"target >= {TARGETS['throughput_ratio']} : {'met' if met['throughput_ratio'] else 'NOT met'}"),
        *[(f"emit->ack at {r.replace(',', ' ideas/s,') if ',' in r else r + ' ideas/s'}", f"p50 {v['p50_ms']:.2f} ms, p99 {v['p99_ms']:.2f} ms",
           f"max {v['max_ms']:.1f} ms, n={v['samples']}; emit->receipt p50/p99 {v['emit_to_receipt']['p50_ms']:.2f}/"
           f"{v['emit_to_receipt']['p99_ms']:.2f} ms, receipt->ack {v['receipt_to_ack']['p50_ms']:.2f}/"
           f"{v['receipt_to_ack']['p99_ms']:.2f} ms") for r, v in latency.items()],
        ("p99 at 1,000/s", f"{p99:.2f} ms", f"target <= {TARGETS['p99_ms_at_1000']:g} ms : {'met' if met['p99_ms_at_1000'] else 'NOT met'}"),
        ("peak RSS, Kafka down, 10x burst", f"{memory['peak_rss_mb']:.1f} MB",
         f"target <= {TARGETS['peak_rss_mb']:g} MB : {'met' if met['peak_rss_mb'] else 'NOT met'}; RSS {memory['rss_at_10s_mb']:.0f} MB at 10 s, "
         f"{memory['rss_at_end_mb']:.0f} MB at {BURST_S:g} s; {memory['queued_records']:.0f} records queued, "
         f"{memory['backpressure_waits']:.0f} backpressure waits"),
    ]
    width = max(len(r[0]) for r in rows)
    print()
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:<32} {note}")
    markdown = "\n".join([
        "# HTI producer benchmark", "",
        f"One run, {results['duration_s']} s, {os.cpu_count()} CPUs shared with other work (1-minute load average "
        f"{load_at_start:.1f} at start, {os.getloadavg()[0]:.1f} at end). Producer settings: linger.ms={common.kafka.linger_ms} "
        "unless noted, acks=all, idempotent, compression lz4. Simulator and feeder run as their own processes; the "
        "producer runs in the benchmark process, except for the memory run (its own process).", "",
        "| measure | value | note |", "|---|---|---|",
        *[f"| {n} | {v} | {note} |" for n, v, note in rows],
    ])
    write_results("hti_producer", results, markdown)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--feeder":
        Feeder.serve(int(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit(main())
