"""Kafka's own producer performance tool (ProducerPerformance) against the
same broker, with the same record sizes as our producers and the same
producer settings (acks=all, idempotent, lz4, linger.ms=5): the ceiling for
them, about 15-30 seconds.

Record sizes: the mean size on the wire (Confluent framing + Avro) of the
records the producers publish, computed here from the simulators' own
generators through the producers' own conversion code: HTI ideas
(simulators.hti IdeaGenerator -> producers.hti.convert.idea_record) and
Anthid events (simulators.anthid OrgEventGenerator, stamped as at emit ->
producers.anthid.convert.convert_data), the Anthid mix as the simulator
emits it (orders, positions, trades, intent actions).
ProducerPerformance fills records with random letters, which compress less
than Avro does; the ceiling errs on the low side for lz4.

    .venv/bin/python -m bench.kafka_perf [SIZE ...]
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone

from confluent_kafka.admin import AdminClient, NewTopic

from bench.common import REPO, write_results

NUM_RECORDS = 500_000
SAMPLE = 5_000  # generated records per source for the mean size
BOOTSTRAP = os.environ.get("TRADEBUS_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
# Our producers' settings (tradebus.kafka.producer_conf with the defaults).
PRODUCER_PROPS = ["acks=all", "enable.idempotence=true", "compression.type=lz4", "linger.ms=5"]

LINE = re.compile(
    r"(?P<records>\d+) records sent, (?P<rps>[\d.]+) records/sec \((?P<mbps>[\d.]+) MB/sec\), "
    r"(?P<avg>[\d.]+) ms avg latency, (?P<max>[\d.]+) ms max latency, (?P<p50>\d+) ms 50th, (?P<p95>\d+) ms 95th, "
    r"(?P<p99>\d+) ms 99th"
)


def hti_record_sizes(n: int = SAMPLE) -> list[int]:
    """Wire sizes of HTI idea records as `tradebus produce hti` publishes them."""
    from producers.hti.convert import DEFAULT_ZONE_RULE, idea_record, parse_json_object, zone_for
    from simulators.hti.ideas import IdeaGenerator
    from tradebus.serde import AvroRecordSerializer
    from tradebus.topics import HTI_IDEAS

    generator, zone = IdeaGenerator(1), zone_for(DEFAULT_ZONE_RULE)
    serialize = AvroRecordSerializer(1, HTI_IDEAS.value_schema)
    sizes = []
    for _ in range(n):
        text = generator.next().text
        meta = {"source": "hti", "producer_instance": "hti-producer-0", "received_at": datetime.now(timezone.utc),
                "upstream_event": "idea", "replay": False}
        sizes.append(len(serialize(idea_record(parse_json_object(text), text, zone, meta))))
    return sizes


def anthid_record_sizes(n: int = SAMPLE) -> list[int]:
    """Wire sizes of Anthid records as `tradebus produce anthid` publishes them, in the simulator's mix."""
    from producers.anthid.convert import DATA_KINDS, convert_data
    from simulators.anthid.events import stamp
    from simulators.anthid.generator import OrgEventGenerator
    from simulators.anthid.orgs import OrgDirectory
    from tradebus.serde import AvroRecordSerializer

    org = OrgDirectory.from_key_specs(["bench-key:bench"]).organizations[0]
    generator = OrgEventGenerator(org, 1)
    serializers = {kind.event: AvroRecordSerializer(1, kind.topic.value_schema) for kind in DATA_KINDS.values()}
    sizes = []
    for generated in generator.take(n):
        event = generated.event
        stamp(event, time.time_ns())
        raw = event.SerializeToString()
        kind = DATA_KINDS[event.WhichOneof("event")]
        _key, record = convert_data(kind, event, raw)
        record["metadata"] = {"source": "anthid", "producer_instance": "anthid-producer-0",
                              "received_at": datetime.now(timezone.utc), "upstream_event": kind.event, "replay": False}
        sizes.append(len(serializers[kind.event](record)))
    return sizes


def run_perf(record_size: int, num_records: int, bootstrap: str = BOOTSTRAP) -> dict:
    topic = f"bench-perf-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 6, 1)])[topic].result()
    cmd = [
        "bash", str(REPO / "infra/local/kafka-run-class.sh"), "org.apache.kafka.tools.ProducerPerformance",
        "--bootstrap-server", bootstrap, "--topic", topic, "--num-records", str(num_records),
        "--record-size", str(record_size), "--throughput", "-1", "--command-property", *PRODUCER_PROPS,
    ]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    finally:
        admin.delete_topics([topic])
    warnings = [line for line in out.stderr.splitlines() if "WARN" in line or "deprecat" in line.lower()]
    for line in reversed(out.stdout.splitlines()):
        m = LINE.search(line)
        if m:
            return {"record_size": record_size, "records": int(m["records"]), "records_per_s": float(m["rps"]),
                    "mb_per_s": float(m["mbps"]), "latency_avg_ms": float(m["avg"]), "latency_p50_ms": int(m["p50"]),
                    "latency_p99_ms": int(m["p99"]), "tool_warnings": warnings[:5]}
    raise RuntimeError(f"ProducerPerformance printed no summary:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")


def main(explicit_sizes: tuple[int, ...] = ()) -> dict:
    started = time.monotonic()
    sources = {}
    if explicit_sizes:
        sources = {f"{size} B (given)": {"mean_bytes": size} for size in explicit_sizes}
    else:
        for name, sizes in (("HTI ideas", hti_record_sizes()), ("Anthid events", anthid_record_sizes())):
            ordered = sorted(sizes)
            sources[name] = {"mean_bytes": round(sum(sizes) / len(sizes)), "p50_bytes": ordered[len(ordered) // 2],
                             "max_bytes": ordered[-1], "sampled": len(sizes)}
    rows = []
    for name, source in sources.items():
        print(f"ProducerPerformance: {NUM_RECORDS:,} records of {source['mean_bytes']} B ({name}) ...", flush=True)
        rows.append({"source": name, **run_perf(source["mean_bytes"], NUM_RECORDS)})
    table = ["| records like | record size (bytes, mean) | records/s | MB/s | p50 ms | p99 ms |",
             "|---|---:|---:|---:|---:|---:|"]
    table += [f"| {r['source']} | {r['record_size']} | {r['records_per_s']:,.0f} | {r['mb_per_s']:.1f} | "
              f"{r['latency_p50_ms']} | {r['latency_p99_ms']} |" for r in rows]
    sizes_note = "; ".join(f"{name}: mean {s['mean_bytes']} B, median {s.get('p50_bytes', '-')} B, max {s.get('max_bytes', '-')} B "
                           f"over {s.get('sampled', '-')} generated records" for name, s in sources.items())
    results = {"name": "kafka_perf", "num_records": NUM_RECORDS, "producer_props": PRODUCER_PROPS,
               "record_sizes": sources, "rows": rows, "duration_s": round(time.monotonic() - started, 1)}
    markdown = "\n".join([
        *table, "",
        f"Kafka's ProducerPerformance (one Java producer, {NUM_RECORDS:,} records per size, unthrottled, 6 partitions, "
        f"`{' '.join(PRODUCER_PROPS)}`, i.e. our producers' settings) on the same broker. Record sizes are the mean wire "
        f"size (framing + Avro) of what our producers publish: {sizes_note}. Its payloads are random letters, "
        "which lz4 compresses less than Avro records.",
    ])
    write_results("kafka_perf", results, markdown)
    print(markdown)
    return results


if __name__ == "__main__":
    main(tuple(int(s) for s in sys.argv[1:]))
