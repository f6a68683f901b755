"""Anthid producer benchmark (issue 4 §4), about 2-3 minutes.

1. Throughput: the simulator (its own process) emits as fast as it can; one
   producer (this process) streams to acknowledged Kafka writes. Beside it,
   in the same run, the protobuf-decode + Avro-encode rate of the very events
   the producer received. Target: producer >= half the decode+encode rate.
2. Latency at 1,000 events/s: the simulator's emit time (received_at, set
   at emit) to the Kafka acknowledgement seen by the producer. Target p99 <= 10 ms.
3. Memory with Kafka stopped: the producer as its own process pointed at a
   dead bootstrap (127.0.0.1:1), the simulator bursting at 10x the rate.
   Target: peak RSS <= 150 MB.

    .venv/bin/python -m bench.anthid_producer
"""

from __future__ import annotations

import dataclasses
import os
import resource
import tempfile
import signal
import struct
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from bench.common import REPO, delete_topics_at_exit, peak_rss_mb, percentile, rss_mb, write_results
from producers.anthid import handler as handler_module
from producers.anthid.convert import DATA_KINDS, convert_data, decode_event
from producers.anthid.run import run
from producers.anthid.settings import AnthidProducerSettings
from tradebus.config import CommonSettings, Env
from tradebus.publishing import Publisher
from tradebus.topics_cli import ensure_topics

API_KEY = "bench-key-0001"
THROUGHPUT_S, RECEIVE_ONLY_S, FEEDER_S, LATENCY_S, KAFKA_ONLY_S, BURST_S, WARMUP_S = 20.0, 6.0, 20.0, 20.0, 10.0, 30.0, 4.0
LATENCY_RATE = 1000.0
BURST_RATE = 10 * LATENCY_RATE
SIM_RATE = 5000.0  # offered; the simulator's own send loop caps what it delivers
CAPTURE = 20_000  # events kept for the decode+encode measurement
TARGETS = {"throughput_ratio": 0.5, "p99_ms": 10.0, "peak_rss_mb": 150.0}


class Simulator:
    """`tradebus sim anthid` in its own process, so it does not share our GIL."""

    def __init__(self, rate: float):
        env = {**os.environ, "TRADEBUS_LOG_LEVEL": "WARNING"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tradebus.cli", "sim", "anthid", "--port", "0", "--rate", str(rate), "--seed", "1",
             "--heartbeat-seconds", "1", "--api-key", API_KEY, "--connection-limit", "4"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.stop()
            raise RuntimeError(f"simulator did not start: {line!r}")
        self.target = line.split("listening on", 1)[1].split()[0]
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()  # keep the pipe drained

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Feeder:
    """A bare gRPC server of StreamEvents that streams recorded simulator
    events (already serialized) in a loop as fast as the connection takes
    them: it measures the producer's capacity where the simulator itself (a
    Python server building every event) is the slower side."""

    def __init__(self, recording: Path):
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.anthid_producer", "--feeder", str(recording)], cwd=REPO,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.target = f"127.0.0.1:{self.proc.stdout.readline().strip()}"

    stop = Simulator.stop

    @staticmethod
    def serve(recording: Path) -> None:
        from concurrent import futures

        import grpc

        from tradebus.protos import pb

        payloads = read_recording(recording)

        def stream_events(requests, context):
            next(requests)  # the Subscribe
            index = 0
            while context.is_active():
                yield payloads[index % len(payloads)]
                index += 1

        handler = grpc.method_handlers_generic_handler("trading.TradingService", {
            "StreamEvents": grpc.stream_stream_rpc_method_handler(
                stream_events, request_deserializer=pb.StreamEventsRequest.FromString, response_serializer=None)})
        server = grpc.server(futures.ThreadPoolExecutor(4))
        server.add_generic_rpc_handlers((handler,))
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        print(port, flush=True)
        server.wait_for_termination()


def write_recording(path: Path, raws: list[bytes]) -> None:
    with open(path, "wb") as handle:
        for raw in raws:
            handle.write(struct.pack(">I", len(raw)) + raw)


def read_recording(path: Path) -> list[bytes]:
    data, raws, pos = path.read_bytes(), [], 0
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        raws.append(data[pos + 4:pos + 4 + length])
        pos += 4 + length
    return raws


def settings(target: str, **env) -> AnthidProducerSettings:
    return AnthidProducerSettings.from_env(Env({
        "TRADEBUS_ANTHID_API_KEY": API_KEY, "TRADEBUS_ANTHID_TARGET": target, "TRADEBUS_ANTHID_TLS": "false",
        "TRADEBUS_ANTHID_ORDER_DELIVERY": "LIVE", **env}))


class Probe:
    """Counts what the in-process producer received and what Kafka acknowledged."""

    def __init__(self, capture: int = 0):
        self.received = 0
        self.captured: list[bytes] = []
        self.capture = capture
        self.acks: list[tuple[float, float]] = []  # (ack time, emit time)
        self.receipts: list[tuple[float, float, float]] = []  # (receive time, emit time, seconds in the handler)
        self.lock = threading.Lock()

    def install(self):
        original = handler_module.EventHandler.handle
        probe = self

        def handle(handler, raw, event):
            which = event.WhichOneof("event") if event is not None else None
            if which in DATA_KINDS:
                probe.received += 1
                if len(probe.captured) < probe.capture:
                    probe.captured.append(raw)
                stamp = getattr(event, which).received_at
                received = time.time()
                original(handler, raw, event)
                probe.receipts.append((received, stamp.seconds + stamp.nanos / 1e9, time.time() - received))
                return None
            return original(handler, raw, event)

        handler_module.EventHandler.handle = handle
        return original

    def ack(self, emitted: float, err) -> None:
        if err is None:
            self.acks.append((time.time(), emitted))


def run_in_process(target: str, common: CommonSettings, seconds: float, probe: Probe) -> dict:
    original = probe.install()
    publisher = Publisher(common, "anthid", [k.topic for k in DATA_KINDS.values()])
    stop = threading.Event()
    result = {}
    thread = threading.Thread(target=lambda: result.update(rc=run(settings(target), common, stop=stop, publisher=publisher,
                                                                    ack_observer=probe.ack)), daemon=True)
    cpu0, wall0 = _cpu(), time.monotonic()
    thread.start()
    time.sleep(seconds)
    cpu1, wall1 = _cpu(), time.monotonic()
    stop.set()
    thread.join(60)
    handler_module.EventHandler.handle = original
    return {"publisher": publisher, "exit_code": result.get("rc"), "cpu_share": (cpu1 - cpu0) / (wall1 - wall0)}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rate_in_window(acks: list[tuple[float, float]], start: float, end: float) -> float:
    return sum(1 for ack, _ in acks if start <= ack < end) / (end - start)


def grpc_receive_rate(target: str, seconds: float) -> float:
    """The producer's StreamSession alone (receive + protobuf decode, nothing
    else) on the feeder: the share of the budget gRPC itself takes."""
    from producers.anthid.channel import call_metadata, open_channel
    from producers.anthid.session import StreamSession
    from tradebus.protos import pb

    config = settings(target)
    channel = open_channel(config)
    session = StreamSession(channel, call_metadata(config), heartbeat_timeout_s=60).open()
    session.subscribe("", [pb.EVENT_TYPE_BROKER_TRADE], pb.ORDER_DELIVERY_LIVE)
    count, started = 0, time.monotonic()
    try:
        for _ in session:
            count += 1
            if count % 500 == 0 and time.monotonic() - started > seconds:
                break
    finally:
        session.close()
        channel.close()
    return count / (time.monotonic() - started)


def decode_encode_rate(raws: list[bytes], publisher: Publisher) -> float:
    """Protobuf decode + conversion + Avro encode of the same events, one core."""
    started = time.perf_counter()
    for raw in raws:
        event = decode_event(raw)
        kind = DATA_KINDS[event.WhichOneof("event")]
        _key, record = convert_data(kind, event, raw)
        record["metadata"] = publisher.metadata(kind.event, False)
        publisher.serialize(kind.topic, record)
    return len(raws) / (time.perf_counter() - started)


def phase_throughput(common) -> dict:
    """The simulator offering SIM_RATE/s, then the feeder replaying the very
    events the producer received, both into the same producer code."""
    sim = Simulator(SIM_RATE)
    probe = Probe(capture=CAPTURE)
    try:
        t0 = time.time()
        outcome = run_in_process(sim.target, common, THROUGHPUT_S, probe)
    finally:
        sim.stop()
    from_sim = rate_in_window(probe.acks, t0 + WARMUP_S, t0 + THROUGHPUT_S)
    reference = decode_encode_rate(probe.captured, outcome["publisher"])
    with tempfile.TemporaryDirectory() as tmp:
        recording = Path(tmp) / "events.bin"
        write_recording(recording, probe.captured)
        feeder = Feeder(recording)
        fed = Probe()
        try:
            receive_only = grpc_receive_rate(feeder.target, RECEIVE_ONLY_S)
            t1 = time.time()
            fed_outcome = run_in_process(feeder.target, common, FEEDER_S, fed)
        finally:
            feeder.stop()
    capacity = rate_in_window(fed.acks, t1 + WARMUP_S, t1 + FEEDER_S)
    return {
        "simulator_offered_per_s": SIM_RATE, "events_per_s": round(from_sim),
        "producer_cpu_share_of_one_core": round(outcome["cpu_share"], 2), "events_acked": len(probe.acks),
        "producer_capacity_events_per_s": round(capacity), "capacity_cpu_share_of_one_core": round(fed_outcome["cpu_share"], 2),
        "decode_encode_events_per_s": round(reference), "sample_for_decode_encode": len(probe.captured),
        "ratio": round(capacity / reference, 3) if reference else None,
        "ratio_simulator_bound": round(from_sim / reference, 3) if reference else None,
        "grpc_receive_and_decode_only_events_per_s": round(receive_only),
        "exit_codes": [outcome["exit_code"], fed_outcome["exit_code"]],
    }


def phase_latency(common, linger_ms: int | None = None) -> dict:
    if linger_ms is not None:
        common = dataclasses.replace(common, kafka=dataclasses.replace(common.kafka, linger_ms=linger_ms))
    sim = Simulator(LATENCY_RATE)
    probe = Probe()
    try:
        t0 = time.time()
        outcome = run_in_process(sim.target, common, LATENCY_S, probe)
    finally:
        sim.stop()
    latencies = [(ack - emitted) * 1000 for ack, emitted in probe.acks if ack >= t0 + WARMUP_S]
    receipts = [r for r in probe.receipts if r[0] >= t0 + WARMUP_S]
    to_receive = summary([(received - emitted) * 1000 for received, emitted, _ in receipts])
    handling = summary([spent * 1000 for _, _, spent in receipts])
    return {"rate_per_s": LATENCY_RATE, "linger_ms": common.kafka.linger_ms, **summary(latencies),
            "emit_to_receive_p50_ms": to_receive["p50_ms"], "emit_to_receive_p99_ms": to_receive["p99_ms"],
            "handling_p50_ms": handling["p50_ms"], "handling_p99_ms": handling["p99_ms"],
            "achieved_per_s": round(len(latencies) / (LATENCY_S - WARMUP_S)), "exit_code": outcome["exit_code"]}


def phase_kafka_only_latency(common) -> dict:
    """The same producer settings writing 600-byte records at 1,000/s with no
    gRPC or conversion: what the broker and librdkafka alone contribute."""
    from tradebus.kafka import PipelineProducer
    from tradebus.topics import BROKER_TRADES, TopicNames

    producer = PipelineProducer(common.kafka, "bench-kafka-only")
    topic, latencies, sent = TopicNames(common.topic_prefix)(BROKER_TRADES), [], 0
    started = time.monotonic()
    while time.monotonic() - started < KAFKA_ONLY_S:
        due = int((time.monotonic() - started) * LATENCY_RATE)
        while sent < due:
            emitted = time.time()
            producer.produce(topic, f"k{sent % 64}", b"x" * 600,
                             lambda err, _m, t=emitted: err is None and latencies.append((time.time() - t) * 1000))
            sent += 1
        producer.poll(0.0005)
    producer.flush(30)
    return {"rate_per_s": LATENCY_RATE, "linger_ms": common.kafka.linger_ms, **summary(latencies[len(latencies) // 5:])}


def summary(latencies: list[float]) -> dict:
    return {"samples": len(latencies), "p50_ms": round(percentile(latencies, 50), 2),
            "p99_ms": round(percentile(latencies, 99), 2), "max_ms": round(max(latencies), 2) if latencies else None}


def phase_memory(common) -> dict:
    sim = Simulator(BURST_RATE)
    env = {**os.environ, "TRADEBUS_TOPIC_PREFIX": common.topic_prefix, "TRADEBUS_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
           "TRADEBUS_HTTP_PORT": "0", "TRADEBUS_ANTHID_API_KEY": API_KEY, "TRADEBUS_LOG_LEVEL": "ERROR",
           "TRADEBUS_SHUTDOWN_TIMEOUT_SECONDS": "3", "TRADEBUS_INSTANCE_ID": "bench-burst"}
    producer = subprocess.Popen([sys.executable, "-m", "tradebus.cli", "produce", "anthid", "--target", sim.target,
                                 "--plaintext"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    samples = []
    try:
        deadline = time.monotonic() + BURST_S
        while time.monotonic() < deadline and producer.poll() is None:
            samples.append(rss_mb(producer.pid))
            time.sleep(0.25)
        peak = peak_rss_mb(producer.pid)
        producer.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        _, err = producer.communicate(timeout=60)
        exit_s = time.monotonic() - stopped
    finally:
        if producer.poll() is None:
            producer.kill()
        sim.stop()
    unsent = [line for line in err.splitlines() if "unacknowledged" in line]
    return {"burst_rate_per_s": BURST_RATE, "seconds": BURST_S, "peak_rss_mb": round(peak, 1),
            "rss_at_end_mb": round(samples[-1], 1) if samples else None,
            "rss_after_5s_mb": round(samples[min(20, len(samples) - 1)], 1) if samples else None,
            "exit_code_on_sigterm": producer.returncode, "exit_seconds": round(exit_s, 1),
            "shutdown_report": unsent[-1][:200] if unsent else None}


def markdown(results: dict) -> str:
    t, lat, mem = results["throughput"], results["latency"], results["memory"]
    l1, ko = results["latency_linger_1ms"], results["latency_kafka_only"]
    ok = results["targets_met"]
    mark = {True: "met", False: "NOT met"}
    return "\n".join([
        "| measure | figure | target | |",
        "|---|---|---|---|",
        f"| simulator (offered {t['simulator_offered_per_s']:,.0f}/s) -> acknowledged Kafka writes | {t['events_per_s']:,} events/s (producer CPU {t['producer_cpu_share_of_one_core']:.0%} of a core: simulator-bound) | | ratio {t['ratio_simulator_bound']} |",
        f"| producer capacity: recorded simulator events, fed as fast as taken -> acknowledged Kafka writes | {t['producer_capacity_events_per_s']:,} events/s (CPU {t['capacity_cpu_share_of_one_core']:.0%} of a core) | >= 0.5 x decode+encode | {mark[ok['throughput']]} (ratio {t['ratio']}) |",
        f"| gRPC receive + protobuf decode only (the producer's session on the feeder) | {t['grpc_receive_and_decode_only_events_per_s']:,} events/s | | |",
        f"| protobuf decode + Avro encode of the same {t['sample_for_decode_encode']:,} events, one core | {t['decode_encode_events_per_s']:,} events/s | reference | |",
        f"| emit -> ack p50 at {lat['rate_per_s']:,.0f}/s | {lat['p50_ms']} ms | | |",
        f"| emit -> ack p99 at {lat['rate_per_s']:,.0f}/s | {lat['p99_ms']} ms (max {lat['max_ms']} ms, {lat['samples']:,} samples, linger.ms={lat['linger_ms']}) | <= 10 ms | {mark[ok['latency']]} |",
        f"| of which emit -> producer receives the event (simulator + gRPC) | p50 {lat['emit_to_receive_p50_ms']} ms, p99 {lat['emit_to_receive_p99_ms']} ms | | |",
        f"| of which convert + encode + enqueue in the producer | p50 {lat['handling_p50_ms']} ms, p99 {lat['handling_p99_ms']} ms | | |",
        f"| same, TRADEBUS_KAFKA_LINGER_MS=1 | p50 {l1['p50_ms']} ms, p99 {l1['p99_ms']} ms (max {l1['max_ms']} ms) | <= 10 ms | {mark[l1['p99_ms'] <= TARGETS['p99_ms']]} |",
        f"| Kafka alone (same producer settings, 600 B records at 1,000/s, linger.ms={ko['linger_ms']}) | p50 {ko['p50_ms']} ms, p99 {ko['p99_ms']} ms | reference | |",
        f"| peak RSS, Kafka stopped, burst {mem['burst_rate_per_s']:,.0f}/s for {mem['seconds']:.0f}s | {mem['peak_rss_mb']} MB | <= 150 MB | {mark[ok['memory']]} |",
        f"| SIGTERM with Kafka stopped | exit {mem['exit_code_on_sigterm']} after {mem['exit_seconds']} s | loud, bounded | |",
        "",
        "Simulator and producer are separate processes on the same 2 cores (shared with other work), Kafka and the",
        "registry on loopback. Latency: the simulator's emit time (received_at) to the delivery report in the producer.",
    ])


def main() -> int:
    prefix = f"bench-anthid-{uuid.uuid4().hex[:8]}."
    common = CommonSettings.from_env(Env({**os.environ, "TRADEBUS_TOPIC_PREFIX": prefix, "TRADEBUS_HTTP_PORT": "0",
                                          "TRADEBUS_INSTANCE_ID": "bench", "TRADEBUS_LOG_LEVEL": "WARNING"}))
    ensure_topics(common)
    delete_topics_at_exit(common.kafka, prefix)
    started = time.monotonic()
    results = {"topic_prefix": prefix}
    print("throughput ...", flush=True)
    results["throughput"] = phase_throughput(common)
    print("latency at 1,000/s ...", flush=True)
    results["latency"] = phase_latency(common)
    results["latency_linger_1ms"] = phase_latency(common, linger_ms=1)
    results["latency_kafka_only"] = phase_kafka_only_latency(common)
    print("memory with Kafka stopped ...", flush=True)
    results["memory"] = phase_memory(common)
    results["targets"] = TARGETS
    results["targets_met"] = {
        "throughput": (results["throughput"]["ratio"] or 0) >= TARGETS["throughput_ratio"],
        "latency": results["latency"]["p99_ms"] <= TARGETS["p99_ms"],
        "memory": results["memory"]["peak_rss_mb"] <= TARGETS["peak_rss_mb"],
    }
    results["duration_s"] = round(time.monotonic() - started, 1)
    table = markdown(results)
    write_results("anthid_producer", results, table)
    print(table)
    print(f"({results['duration_s']} s)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--feeder":
        Feeder.serve(Path(sys.argv[2]))
        sys.exit(0)
    logging_level = os.environ.setdefault("TRADEBUS_LOG_LEVEL", "WARNING")
    import logging

    logging.basicConfig(level=logging_level)
    sys.exit(main())
