"""`tradebus demo`: both simulators, both producers and the three workers on
the embedded defaults (SQLite), with a live view that refreshes. Ctrl-C
stops everything cleanly: producers flush, workers commit, nothing is left
behind."""

from __future__ import annotations

import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path

from confluent_kafka import TopicPartition

from tradebus.config import CommonSettings, home_dir
from tradebus.tools.records import reader
from tradebus.tools.supervisor import ChildSpec, Supervisor
from tradebus.topics import DATA_TOPICS, DLQ, STATUS, ALERTS, UNIQUE_TOPICS, TopicNames

HTI_CODE = "demo-hti-code-0001"
ANTHID_KEY = "demo-anthid-key-0001"


def register(parser) -> None:
    parser.add_argument("--duration", type=float, default=0, help="stop by itself after this many seconds (0 = until Ctrl-C)")
    parser.add_argument("--no-view", action="store_true", help="no live view; print a summary at the end (CI)")
    parser.add_argument("--hti-rate", type=float, default=2.0, help="HTI simulator ideas per second")
    parser.add_argument("--anthid-rate", type=float, default=5.0, help="Anthid simulator events per second")
    parser.add_argument("--workdir", default=".local/demo", help="ledgers, logs and the SQLite store")
    parser.set_defaults(func=run)


def plan(workdir: Path) -> list[ChildSpec]:
    db = workdir / "tradebus.db"
    rules = home_dir() / "infra/local/alerts.example.yaml"
    return [
        ChildSpec("sim-hti", ["sim", "hti", "--port", "3500", "--api-code", HTI_CODE, "--seed", "7",
                              "--ledger", str(workdir / "hti.ledger.jsonl")]),
        ChildSpec("sim-anthid", ["sim", "anthid", "--port", "50051", "--api-key", ANTHID_KEY, "--seed", "7",
                                 "--ledger", str(workdir / "anthid.ledger.jsonl")]),
        ChildSpec("consume-dedup", ["consume", "dedup"], http_port=9411),
        ChildSpec("consume-store", ["consume", "store"], {"TRADEBUS_DATABASE_URL": f"sqlite:///{db}"}, http_port=9412),
        ChildSpec("consume-alerts", ["consume", "alerts"], {"TRADEBUS_ALERTS_RULES_FILE": str(rules)}, http_port=9413),
        ChildSpec("produce-hti", ["produce", "hti"], {"TRADEBUS_HTI_SERVER_URL": "http://127.0.0.1:3500",
                                                      "TRADEBUS_HTI_API_CODE": HTI_CODE, "TRADEBUS_INSTANCE_ID": "demo-hti"},
                  http_port=9401),
        ChildSpec("produce-anthid", ["produce", "anthid"], {"TRADEBUS_ANTHID_TARGET": "127.0.0.1:50051",
                                                            "TRADEBUS_ANTHID_TLS": "false", "TRADEBUS_ANTHID_API_KEY": ANTHID_KEY,
                                                            "TRADEBUS_INSTANCE_ID": "demo-anthid"},
                  http_port=9402),
    ]


def topic_counts(common: CommonSettings, consumer) -> dict[str, int]:
    names = TopicNames(common.topic_prefix)
    counts = {}
    listed = consumer.list_topics(timeout=5).topics
    for topic in [*DATA_TOPICS, *UNIQUE_TOPICS.values(), STATUS, DLQ, ALERTS]:
        name = names(topic)
        total = 0
        for p in listed.get(name).partitions if name in listed else []:
            low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=5)
            total += high - low
        counts[name] = total
    return counts


def query(db: Path, sql: str) -> list[sqlite3.Row]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            conn.row_factory = sqlite3.Row
            return conn.execute(sql).fetchall()
    except sqlite3.Error:
        return []  # table not migrated yet


def pick(row: sqlite3.Row, *names: str) -> str:
    keys = row.keys()
    return " ".join(str(row[n]) for n in names if n in keys and row[n] is not None)


def render(common, consumer, sup: Supervisor, db: Path, started: float) -> str:
    lines = [f"tradebus demo — {time.strftime('%H:%M:%S')} — up {time.time() - started:.0f}s — Ctrl-C stops everything", ""]
    lines.append("PROCESSES")
    for child in sup.children:
        lines.append(f"  {child.spec.name:16} {child.health():12} log: {child.log_path}")
    lines.append("")
    lines.append("MESSAGES PER TOPIC")
    for name, count in topic_counts(common, consumer).items():
        lines.append(f"  {name:42} {count:>8}")
    sections = [
        ("LATEST IDEAS", "SELECT * FROM ideas ORDER BY last_update DESC LIMIT 5", ("idea_id", "instrument", "side", "confidence")),
        ("OPEN ORDERS", "SELECT * FROM orders WHERE order_state = 'ORDER_STATE_OPEN' ORDER BY received_at DESC LIMIT 5",
         ("order_id", "symbol", "order_side", "order_status", "filled_quantity", "quantity")),
        ("POSITIONS", "SELECT * FROM positions ORDER BY received_at DESC LIMIT 5", ("account_id", "symbol", "quantity", "average_cost")),
        ("ALERTS FIRED", "SELECT * FROM alerts ORDER BY fired_at DESC LIMIT 5", ("fired_at", "rule", "title")),
    ]
    for title, sql, cols in sections:
        lines.append("")
        lines.append(title)
        rows = query(db, sql)
        lines.extend(f"  {pick(r, *cols)}" for r in rows) if rows else lines.append("  (none yet)")
    return "\n".join(lines)


def run(args) -> int:
    common = CommonSettings.from_env()
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    from tradebus.topics_cli import ensure_topics

    ensure_topics(common)
    sup = Supervisor(workdir / "logs", {"TRADEBUS_LOG_FORMAT": "json"})
    specs = plan(workdir)
    for spec in specs:
        if spec.name == "sim-hti":
            spec.args += ["--rate", str(args.hti_rate)]
        if spec.name == "sim-anthid":
            spec.args += ["--rate", str(args.anthid_rate)]
        sup.start(spec)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    consumer = reader(common)
    db = workdir / "tradebus.db"
    started = time.time()
    try:
        while not stop.is_set():
            if args.duration and time.time() - started >= args.duration:
                break
            if not args.no_view:
                sys.stdout.write("\x1b[2J\x1b[H" + render(common, consumer, sup, db, started) + "\n")
                sys.stdout.flush()
            stop.wait(2.0)
    finally:
        print("\nstopping: producers flush, workers commit, simulators close …", flush=True)
        codes = sup.stop_all()
        summary = render(common, consumer, sup, db, started)
        consumer.close()
    print(summary)
    print("\nexit codes: " + ", ".join(f"{k}={v}" for k, v in codes.items()))
    stored = len(query(db, "SELECT 1 FROM idea_versions LIMIT 1")) + len(query(db, "SELECT 1 FROM order_events LIMIT 1"))
    clean = all(code == 0 for code in codes.values())
    if args.duration:
        print(f"data reached the store: {'yes' if stored else 'NO'}; clean shutdown: {'yes' if clean else 'NO'}")
        return 0 if stored and clean else 1
    return 0 if clean else 1
