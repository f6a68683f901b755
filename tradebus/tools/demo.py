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
    parser.add_argument("--seed", type=int, help="simulator seed (default: a new one each run, so ids never collide "
                        "with an earlier run's events that the dedup worker still remembers)")
    parser.add_argument("--workdir", default=".local/demo", help="ledgers, logs and the SQLite store")
    parser.set_defaults(func=run)


def plan(workdir: Path) -> list[ChildSpec]:
    db = workdir / "tradebus.db"
    rules = home_dir() / "infra/local/alerts.example.yaml"
    return [
        ChildSpec("sim-hti", ["sim", "hti", "--port", "3500", "--api-code", HTI_CODE, "--ledger", str(workdir / "hti.ledger.jsonl")]),
        ChildSpec("sim-anthid", ["sim", "anthid", "--port", "50051", "--api-key", ANTHID_KEY, "--ledger", str(workdir / "anthid.ledger.jsonl")]),
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


class RecordCounter:
    """Counts committed records per topic by reading them: offsets would
    overcount transactional topics, whose commit markers take offsets too."""

    def __init__(self, common: CommonSettings):
        names = TopicNames(common.topic_prefix)
        self.topics = [names(t) for t in (*DATA_TOPICS, *UNIQUE_TOPICS.values(), STATUS, DLQ, ALERTS)]
        self.counts = {t: 0 for t in self.topics}
        self.consumer = reader(common, **{"auto.offset.reset": "earliest", "fetch.wait.max.ms": 200})
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="record-counter", daemon=True)

    def start(self) -> "RecordCounter":
        self.consumer.subscribe(self.topics)
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            for msg in self.consumer.consume(1000, 0.5):
                if msg.error() is None:
                    self.counts[msg.topic()] += 1

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.consumer.close()


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


def render(counter: RecordCounter, sup: Supervisor, db: Path, started: float) -> str:
    lines = [f"tradebus demo — {time.strftime('%H:%M:%S')} — up {time.time() - started:.0f}s — Ctrl-C stops everything", ""]
    lines.append("PROCESSES")
    for child in sup.children:
        lines.append(f"  {child.spec.name:16} {child.health():12} log: {child.log_path}")
    lines.append("")
    lines.append("MESSAGES PER TOPIC")
    for name, count in counter.counts.items():
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


def stop_in_order(sup: Supervisor, db: Path) -> dict[str, int]:
    """Upstream first, so everything the simulators emitted is published,
    then the producers (flush), then the workers once they have caught up."""
    codes = {}
    by_prefix = lambda prefix: [c for c in sup.children if c.spec.name.startswith(prefix)]  # noqa: E731
    for child in by_prefix("sim-") + by_prefix("produce-"):
        codes[child.spec.name] = sup.stop(child, 40.0)
    # Workers drain: wait until the store stops changing for a few seconds.
    deadline, last, stable_since = time.time() + 30, None, time.time()
    while time.time() < deadline and time.time() - stable_since < 4:
        counts = [len(query(db, f"SELECT 1 FROM {t}")) for t in ("idea_versions", "order_events", "trades")]
        if counts != last:
            last, stable_since = counts, time.time()
        time.sleep(0.5)
    for child in reversed(by_prefix("consume-")):
        codes[child.spec.name] = sup.stop(child, 40.0)
    return codes


def run(args) -> int:
    common = CommonSettings.from_env()
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    from tradebus.topics_cli import ensure_topics

    ensure_topics(common)
    sup = Supervisor(workdir / "logs", {"TRADEBUS_LOG_FORMAT": "json"})
    specs = plan(workdir)
    seed = args.seed if args.seed is not None else int(time.time())
    print(f"simulator seed {seed}; logs in {workdir / 'logs'}", flush=True)
    for spec in specs:
        if spec.name.startswith("sim-"):
            spec.args += ["--seed", str(seed)]
        if spec.name == "sim-hti":
            spec.args += ["--rate", str(args.hti_rate)]
        if spec.name == "sim-anthid":
            spec.args += ["--rate", str(args.anthid_rate)]
        sup.start(spec)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    counter = RecordCounter(common).start()
    db = workdir / "tradebus.db"
    started = time.time()
    try:
        while not stop.is_set():
            if args.duration and time.time() - started >= args.duration:
                break
            if not args.no_view:
                sys.stdout.write("\x1b[2J\x1b[H" + render(counter, sup, db, started) + "\n")
                sys.stdout.flush()
            stop.wait(2.0)
    finally:
        print("\nstopping: simulators close, producers flush, workers drain and commit …", flush=True)
        codes = stop_in_order(sup, db)
        time.sleep(1.5)  # let the counter read the last commits
        summary = render(counter, sup, db, started)
        counter.stop()
    print(summary)
    print("\nexit codes: " + ", ".join(f"{k}={v}" for k, v in codes.items()))
    stored = len(query(db, "SELECT 1 FROM idea_versions LIMIT 1")) + len(query(db, "SELECT 1 FROM order_events LIMIT 1"))
    clean = all(code == 0 for code in codes.values())
    print("\nverify (store vs simulator ledgers):", flush=True)
    from tradebus.tools import verify

    verified = verify.main_for(f"sqlite:///{db}", str(workdir / "hti.ledger.jsonl"), str(workdir / "anthid.ledger.jsonl")) == 0
    if args.duration:
        print(f"data reached the store: {'yes' if stored else 'NO'}; clean shutdown: {'yes' if clean else 'NO'}; "
              f"store matches the ledgers: {'yes' if verified else 'NO'}")
        return 0 if stored and clean and verified else 1
    return 0 if clean else 1
