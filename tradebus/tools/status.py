"""`tradebus status`: the stack's and the pipeline's health at a glance."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

import requests
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from tradebus.config import CommonSettings, database_url
from tradebus.redaction import redact_url
from tradebus.tools.records import jsonable, read_records, reader
from tradebus.topics import ALL_TOPICS, STATUS, TopicNames

WORKER_GROUPS = ["tradebus-dedup", "tradebus-store", "tradebus-alerts"]


def register(parser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run)


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex((host, port)) == 0


def stack_health(common: CommonSettings) -> dict:
    health = {}
    try:
        AdminClient(common.kafka.client_conf()).list_topics(timeout=5)
        health["kafka"] = {"ok": True, "where": common.kafka.bootstrap_servers}
    except KafkaException as exc:
        health["kafka"] = {"ok": False, "where": common.kafka.bootstrap_servers, "error": str(exc.args[0])}
    try:
        r = requests.get(f"{common.kafka.schema_registry_url}/subjects", timeout=15)
        health["schema_registry"] = {"ok": r.ok, "where": redact_url(common.kafka.schema_registry_url)}
    except requests.RequestException as exc:
        health["schema_registry"] = {"ok": False, "where": redact_url(common.kafka.schema_registry_url), "error": type(exc).__name__}
    url = database_url()
    parts = urlsplit(url)
    if parts.scheme.startswith("postgres"):
        ok = _port_open(parts.hostname or "127.0.0.1", parts.port or 5432)
    else:
        ok = True  # SQLite is a file; the store worker creates it
    health["database"] = {"ok": ok, "where": redact_url(url)}
    return health


def topic_sizes(common: CommonSettings) -> list[dict]:
    names = TopicNames(common.topic_prefix)
    consumer = reader(common)
    existing = consumer.list_topics(timeout=10).topics
    rows = []
    for t in ALL_TOPICS:
        name = names(t)
        if name not in existing:
            rows.append({"topic": name, "exists": False, "records": 0})
            continue
        try:
            total = sum(high - low for low, high in
                        (_watermarks(consumer, TopicPartition(name, p)) for p in existing[name].partitions))
            rows.append({"topic": name, "exists": True, "records": total})
        except KafkaException as exc:  # e.g. a leader election in progress: say so for this topic only
            rows.append({"topic": name, "exists": True, "records": None, "error": exc.args[0].str()})
    consumer.close()
    return rows


def _watermarks(consumer, tp: TopicPartition, attempts: int = 5) -> tuple[int, int]:
    """Watermarks, retried while a fresh or restarted partition elects its leader."""
    for attempt in range(attempts):
        try:
            return consumer.get_watermark_offsets(tp, timeout=10)
        except KafkaException as exc:
            if attempt == attempts - 1 or not exc.args[0].retriable() and exc.args[0].code() not in (
                    KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE):
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def group_lag(common: CommonSettings) -> list[dict]:
    admin = AdminClient(common.kafka.client_conf())
    consumer = reader(common)
    rows = []
    for group in WORKER_GROUPS:
        try:
            futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
            committed = futures[group].result().topic_partitions
        except KafkaException:
            continue
        per_topic: dict[str, int] = {}
        for tp in committed:
            if tp.offset < 0:
                continue
            _, high = _watermarks(consumer, TopicPartition(tp.topic, tp.partition))
            per_topic[tp.topic] = per_topic.get(tp.topic, 0) + max(0, high - tp.offset)
        for topic, lag in sorted(per_topic.items()):
            rows.append({"group": group, "topic": topic, "lag": lag})
    consumer.close()
    return rows


def last_status(common: CommonSettings, per_partition: int = 50) -> dict[str, dict]:
    """The newest status event of each producer instance."""
    latest: dict[str, dict] = {}
    try:
        for record in read_records(common, TopicNames(common.topic_prefix)(STATUS), from_beginning=False,
                                   last=per_partition, follow=False):
            v = record["value"] or {}
            latest[f"{v.get('source')}/{v.get('producer_instance')}"] = jsonable(v)
    except SystemExit:
        pass
    return latest


def run(args) -> int:
    common = CommonSettings.from_env()
    report = {"stack": stack_health(common)}
    if report["stack"]["kafka"]["ok"]:
        try:
            report["topics"] = topic_sizes(common)
            report["lag"] = group_lag(common)
            report["producers"] = last_status(common)
        except KafkaException as exc:  # e.g. a broker restarting: report, do not crash
            report["stack"]["kafka"] = {"ok": False, "where": common.kafka.bootstrap_servers, "error": str(exc.args[0])}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print("STACK")
        for name, h in report["stack"].items():
            print(f"  {name:16} {'up  ' if h['ok'] else 'DOWN'} {h['where']}")
        for row in report.get("topics", []):
            if row == report["topics"][0]:
                print("TOPICS")
            shown = "missing" if not row["exists"] else ("?" if row["records"] is None else row["records"])
            print(f"  {row['topic']:42} {shown:>10}")
        if report.get("lag"):
            print("CONSUMER LAG")
            for row in report["lag"]:
                print(f"  {row['group']:16} {row['topic']:42} {row['lag']:>8}")
        if report.get("producers"):
            print("PRODUCERS (last status event)")
            now = time.time()
            for who, v in sorted(report["producers"].items()):
                print(f"  {who:30} {v['kind']:12} {v.get('emitted_at')} {v.get('message') or ''}")
    return 0 if all(h["ok"] for h in report["stack"].values()) else 1
