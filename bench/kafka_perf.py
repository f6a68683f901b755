"""Kafka's own producer performance tool against the same broker with the
same record sizes as our producers: the ceiling for them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from bench.common import REPO, write_results

LINE = re.compile(
    r"(?P<records>\d+) records sent, (?P<rps>[\d.]+) records/sec \((?P<mbps>[\d.]+) MB/sec\), "
    r"(?P<avg>[\d.]+) ms avg latency, (?P<max>[\d.]+) ms max latency, (?P<p50>\d+) ms 50th, (?P<p95>\d+) ms 95th, "
    r"(?P<p99>\d+) ms 99th"
)


def run_perf(record_size: int, num_records: int, bootstrap: str = "127.0.0.1:9092") -> dict:
    topic = f"bench-perf-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 6, 1)])[topic].result()
    cmd = [
        "bash", str(REPO / "infra/local/kafka-run-class.sh"), "org.apache.kafka.tools.ProducerPerformance",
        "--topic", topic, "--num-records", str(num_records), "--record-size", str(record_size), "--throughput", "-1",
        "--producer-props", f"bootstrap.servers={bootstrap}", "acks=all", "enable.idempotence=true",
        "compression.type=lz4", "linger.ms=5",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    admin.delete_topics([topic])
    for line in reversed(out.stdout.splitlines()):
        m = LINE.search(line)
        if m:
            return {"record_size": record_size, "records": int(m["records"]), "records_per_s": float(m["rps"]),
                    "mb_per_s": float(m["mbps"]), "latency_avg_ms": float(m["avg"]), "latency_p50_ms": int(m["p50"]),
                    "latency_p99_ms": int(m["p99"])}
    raise RuntimeError(f"ProducerPerformance printed no summary:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")


def main(sizes=(600, 900), num_records: int = 200_000) -> dict:
    rows = [run_perf(size, num_records) for size in sizes]
    table = ["| record size (bytes) | records/s | MB/s | p50 ms | p99 ms |", "|---:|---:|---:|---:|---:|"]
    table += [f"| {r['record_size']} | {r['records_per_s']:,.0f} | {r['mb_per_s']:.1f} | {r['latency_p50_ms']} | {r['latency_p99_ms']} |"
              for r in rows]
    results = {"name": "kafka_perf", "rows": rows}
    write_results("kafka_perf", results, "## Kafka ProducerPerformance (the ceiling)\n\n" + "\n".join(table))
    print("\n".join(table))
    return results


if __name__ == "__main__":
    sizes = tuple(int(s) for s in sys.argv[1:]) or (600, 900)
    main(sizes)
