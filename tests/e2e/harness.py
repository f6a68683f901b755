"""The end-to-end harness: the whole tradebus pipeline as real processes on the
real local stack, on topics, consumer groups and a PostgreSQL schema of its own.

    with Pipeline("worker-kill", tmp_path) as p:      # sims, workers, producers; all ready, traffic paused
        p.resume()                                    # traffic flows
        p.kill("consume-dedup"); p.restart("consume-dedup")
        p.settle()                                    # stop generation, wait for the store to match or go quiet
        result = p.check()                            # ledgers vs store, unique topics, DLQ, counts
        result.assert_ok()

Every child is `python -m tradebus.cli ...` (producers, workers) or
`python -m tests.e2e.simproc ...` (the simulators, configured by their own CLI
parsers, with a control endpoint to pause generation and inject faults). Each
child's stdout+stderr goes to <workdir>/logs/<name>.log (appended across restarts).

Isolation between concurrent runs: a unique TRADEBUS_TOPIC_PREFIX (topics and
schema subjects), a unique consumer group per worker (TRADEBUS_<W>_GROUP, so the
dedup transactional id, <group>-<prefix><instance>, is unique too), a fresh
PostgreSQL schema selected through the URL's search_path, free ports. Topics and
the schema are deleted at the end.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable

import requests

REPO = Path(__file__).resolve().parents[2]
RESULTS_DIR = Path(__file__).resolve().parent / "results"
STACK_SH = REPO / "infra/local/stack.sh"
PG_BASE_URL = os.environ.get("TRADEBUS_TEST_PG_URL", "postgresql://tradebus:tradebus@127.0.0.1:5432/tradebus")
STACK_PORTS = {"kafka": 9092, "registry": 8081, "postgresql": 5432}

HTI_CODE = "e2e-hti-code-5f1c9a"
ANTHID_KEY = "e2e-anthid-key-83b2d4"
ANTHID_ORG = "e2e"

# Variables of the parent environment the children may inherit; every other
# TRADEBUS_* variable is dropped so a developer's shell cannot change a scenario.
INHERITED_TRADEBUS = ("TRADEBUS_HOME", "TRADEBUS_GEN_DIR", "TRADEBUS_KAFKA_BOOTSTRAP_SERVERS",
                      "TRADEBUS_SCHEMA_REGISTRY_URL")

PRODUCERS = ("produce-hti", "produce-anthid")
WORKERS = ("consume-dedup", "consume-store", "consume-alerts")
SIMS = ("sim-hti", "sim-anthid")

# Every result of this pytest session, for the summary table (conftest.py).
SESSION_RESULTS: list[dict] = []

DEFAULT_RULES = """\
version: 1
defaults: {cooldown_seconds: 0, severity: info, sinks: [log]}
rules:
  - name: large-fill
    kind: large_fill
    min_notional: 250000
  - name: order-rejected-or-cancelled
    kind: order_rejected_or_cancelled
  - name: gap-reported
    kind: gap_reported
  - name: producer-silent
    kind: producer_silent
    silent_seconds: 30
"""


# ---------------------------------------------------------------------------- small helpers

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def metric_sum(text: str, name: str, **labels) -> float:
    """Sum of the samples of one metric in Prometheus text, optionally filtered by labels."""
    total = 0.0
    pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s+([0-9.eE+-]+|NaN)$")
    for line in text.splitlines():
        m = pattern.match(line)
        if not m:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(m.group(2)) if m.group(2) != "NaN" else 0.0
    return total


def parse_time(value) -> float:
    """Epoch seconds from an epoch float or an RFC 3339 text (nanoseconds allowed)."""
    if isinstance(value, (int, float)):
        return float(value)
    from tradebus.tools.verify import micros

    return datetime.fromisoformat(micros(value) + "+00:00").timestamp()


# ----------------------------------------------------------------------------------- processes

@dataclass
class Proc:
    """One child process; restartable (same name, same log file, same ports)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    http_port: int | None = None
    process: subprocess.Popen | None = None
    starts: int = 0
    exit_codes: list[int] = field(default_factory=list)  # of every incarnation that ended
    held_down: bool = False  # stopped or killed on purpose: the supervisor leaves it alone

    def start(self) -> "Proc":
        assert not self.alive, f"{self.name} already running"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"==== e2e harness: start #{self.starts + 1} of {self.name} at {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            self.process = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, cwd=REPO, start_new_session=True)
        self.starts += 1
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def signal(self, sig: int) -> None:
        if self.alive:
            self.process.send_signal(sig)

    def kill(self) -> int:
        """SIGKILL (no clean shutdown at all) and reap."""
        if self.alive:
            os.kill(self.process.pid, signal.SIGKILL)
        return self.wait(10)

    def wait(self, timeout: float) -> int:
        code = self.process.wait(timeout)
        if len(self.exit_codes) < self.starts:
            self.exit_codes.append(code)
        return code

    def stop(self, grace: float = 30.0) -> int | None:
        """SIGTERM, wait, then SIGKILL the whole process group."""
        if self.process is None:
            return None
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.wait(10)
                return -9
        return self.wait(1)

    def ready(self) -> bool:
        if not self.alive:
            raise RuntimeError(f"{self.name} exited ({self.process.returncode}) while starting:\n{self.tail()}")
        if self.http_port is None:
            return True
        try:
            return requests.get(f"http://127.0.0.1:{self.http_port}/readyz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def metrics(self) -> str:
        if not self.http_port or not self.alive:
            return ""
        try:
            return requests.get(f"http://127.0.0.1:{self.http_port}/metrics", timeout=3).text
        except requests.RequestException:
            return ""

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


# ------------------------------------------------------------------------------------- stack

def ensure_stack() -> None:
    if all(listening(p) for p in STACK_PORTS.values()):
        return
    result = subprocess.run(["bash", str(STACK_SH), "up"], capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"local stack failed to start:\n{result.stdout}\n{result.stderr}")


def stack_has_restart() -> bool:
    text = STACK_SH.read_text()
    return bool(re.search(r"^\s*restart\)", text, re.M))


def restart_stack_service(service: str, down_s: float = 0.0) -> dict:
    """Stop one service of the local stack, start it again and wait until it answers:
    `stack.sh restart SERVICE` when the script has it and ``down_s`` is 0, else the
    script's own stop/start/wait functions (sourced; the script runs nothing when
    sourced), under its lock, with the service down ``down_s`` seconds in between."""
    funcs = {"kafka": ("kafka_stop", "kafka_start", "kafka_wait"),
             "postgres": ("pg_stop", "pg_start", "pg_wait"),
             "registry": ("registry_stop", "registry_start", "registry_wait")}[service]
    stop_fn, start_fn, wait_fn = funcs
    if stack_has_restart() and not down_s:  # `stack.sh restart SERVICE`: stop, start, wait
        argv = ["bash", str(STACK_SH), "restart", service]
    else:  # its own functions, sourced (the script runs nothing when sourced), under its lock
        argv = ["bash", "-c", f"set -euo pipefail; source {STACK_SH}; pg_root >/dev/null; make_local_dirs; "
                              f"take_lock; {stop_fn}; sleep {down_s}; {start_fn}; {wait_fn}"]
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=REPO)
    took = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"restarting {service} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return {"service": service, "seconds": round(took, 1), "command": " ".join(argv[:4]),
            "output": result.stdout.strip().splitlines()[-3:]}


def create_pg_schema(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_BASE_URL, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{name}"')


def drop_pg_schema(name: str) -> None:
    import psycopg

    try:
        with psycopg.connect(PG_BASE_URL, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    except psycopg.Error:
        pass


def schema_url(schema: str, base: str = PG_BASE_URL) -> str:
    return f"{base}?options=-csearch_path%3D{schema}"


# ------------------------------------------------------------------------------- topic reading

def read_topic(common, topic: str, timeout: float = 30.0) -> list:
    """Every committed record of a topic (read_committed), from the beginning to the end."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

    consumer = Consumer({**common.kafka.client_conf(), "group.id": f"e2e-reader-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "isolation.level": "read_committed",
                         "enable.partition.eof": True, "auto.offset.reset": "earliest"})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            return []
        partitions = []
        for p in meta.partitions:
            for attempt in range(5):  # metadata can lag behind right after a restart or under load
                try:
                    low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                    break
                except KafkaException:
                    time.sleep(1.0)
            else:
                low, high = 0, 1  # unknown: read it anyway, the end-of-partition event ends it
            if high > low:
                partitions.append(TopicPartition(topic, p, OFFSET_BEGINNING))
        if not partitions:
            return []
        consumer.assign(partitions)
        done: set[int] = set()
        out = []
        deadline = time.monotonic() + timeout
        while len(done) < len(partitions) and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 1.0):
                if msg.error() is not None:
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        done.add(msg.partition())
                    continue
                out.append(msg)
        return out
    finally:
        consumer.close()


# ----------------------------------------------------------------------------------- result

@dataclass
class CheckResult:
    scenario: str
    ok: bool
    problems: list[str]
    report: dict

    def assert_ok(self) -> None:
        assert self.ok, f"{self.scenario}: " + "; ".join(self.problems) + \
            f"\n(details: {RESULTS_DIR / (self.scenario + '.json')})"


# ------------------------------------------------------------------------------------ pipeline

@dataclass
class PipelineOptions:
    hti_rate: float = 5.0
    hti_update_probability: float = 0.2
    hti_args: tuple[str, ...] = ()
    anthid_rate: float = 20.0
    anthid_args: tuple[str, ...] = ()
    anthid_heartbeat_s: float = 1.0
    # Add "produce-anthid-2" for a second Anthid producer: every Anthid event then reaches
    # the raw topics twice and the dedup worker must drop exactly one copy of each.
    components: tuple[str, ...] = SIMS + WORKERS + PRODUCERS
    rules_yaml: str = DEFAULT_RULES
    extra_env: dict[str, dict[str, str]] = field(default_factory=dict)  # per process name, "*" = every process
    seed: int = 7
    hti_code: str = HTI_CODE
    anthid_key: str = ANTHID_KEY
    # The plain `tradebus sim hti|anthid` commands instead of tests.e2e.simproc: no run-time control
    # (pause/resume/inject do nothing), secrets only in the environment and an orgs file.
    real_sims: bool = False
    database_url: str | None = None  # default: the stack's database, a fresh schema
    # Restart a process that exits by itself, after 2 s, as Kubernetes would (restartPolicy
    # Always); every such crash is recorded and reported as a problem by check().
    supervise: bool = False


class Pipeline:
    def __init__(self, scenario: str, workdir: Path, options: PipelineOptions | None = None):
        from tradebus.config import CommonSettings, Env

        self.scenario = scenario
        self.options = options or PipelineOptions()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex[:8]
        self.prefix = f"e2e{token}."
        self.schema = f"e2e_{token}"
        self.database_url = self.options.database_url or schema_url(self.schema)
        self.hti_ledger = self.workdir / "hti.ledger.jsonl"
        self.anthid_ledger = self.workdir / "anthid.ledger.jsonl"
        self.rules_path = self.workdir / "alerts.yaml"
        self.procs: dict[str, Proc] = {}
        self.events: list[dict] = []  # what the scenario did, with times
        self.excused: list[dict] = []  # windows in which an upstream loss is expected (see excuse())
        self.started_at = time.time()
        self.common = CommonSettings.from_env(Env({"TRADEBUS_TOPIC_PREFIX": self.prefix, "TRADEBUS_HTTP_PORT": "0",
                                                   **{k: os.environ[k] for k in INHERITED_TRADEBUS if k in os.environ}}))
        self.ports = {name: free_port() for name in (*SIMS, *WORKERS, *PRODUCERS, "produce-anthid-2", "ctl-hti",
                                                     "ctl-anthid")}
        self.dedup_dropped_seen = 0.0  # tradebus_dedup_dropped_total of earlier dedup incarnations
        self._topics_created = False
        self.crashes: list[dict] = []
        self._closing = threading.Event()
        self._lock = threading.RLock()  # process starts/stops vs the supervisor thread

    # ----------------------------------------------------------------- environment
    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEBUS_")}
        env.update({k: os.environ[k] for k in INHERITED_TRADEBUS if k in os.environ})
        env.update({
            "TRADEBUS_TOPIC_PREFIX": self.prefix,
            "TRADEBUS_LOG_FORMAT": "json",
            "TRADEBUS_LOG_LEVEL": "INFO",
            "TRADEBUS_KAFKA_LINGER_MS": "5",
            "TRADEBUS_SHUTDOWN_TIMEOUT_SECONDS": "15",
            "TRADEBUS_CONSUMER_LAG_INTERVAL_SECONDS": "5",
            "PYTHONUNBUFFERED": "1",
        })
        return env

    def spec(self, name: str) -> Proc:
        o = self.options
        py = sys.executable
        env = self.base_env()
        http_port = None
        if name == "sim-hti":
            head = ([py, "-m", "tradebus.cli", "sim", "hti"] if o.real_sims else
                    [py, "-m", "tests.e2e.simproc", "hti", str(self.ports["ctl-hti"]), "--start-paused"])
            env["TRADEBUS_HTI_API_CODE"] = o.hti_code  # the sim's fallback: keeps the code off the command line
            argv = [*head, "--port", str(self.ports[name]), "--rate", str(o.hti_rate),
                    "--seed", str(o.seed), "--ledger", str(self.hti_ledger),
                    "--update-probability", str(o.hti_update_probability), *o.hti_args]
        elif name == "sim-anthid":
            head = ([py, "-m", "tradebus.cli", "sim", "anthid"] if o.real_sims else
                    [py, "-m", "tests.e2e.simproc", "anthid", str(self.ports["ctl-anthid"]), "--start-paused"])
            orgs = self.workdir / "anthid-orgs.yaml"  # keeps the key off the command line
            orgs.write_text(json.dumps({"organizations": [{"name": ANTHID_ORG, "api_keys": [o.anthid_key]}]}))
            argv = [*head, "--port", str(self.ports[name]), "--orgs-file", str(orgs),
                    "--rate", str(o.anthid_rate), "--seed", f"{o.seed}",
                    "--heartbeat-seconds", str(o.anthid_heartbeat_s), "--ledger", str(self.anthid_ledger),
                    *o.anthid_args]
        elif name == "produce-hti":
            http_port = self.ports[name]
            argv = [py, "-m", "tradebus.cli", "produce", "hti"]
            env.update({"TRADEBUS_HTI_SERVER_URL": f"http://127.0.0.1:{self.ports['sim-hti']}",
                        "TRADEBUS_HTI_API_CODE": o.hti_code, "TRADEBUS_HTI_POLL_SECONDS": "1",
                        "TRADEBUS_HTI_BACKOFF_CAP_SECONDS": "2", "TRADEBUS_HTI_HEARTBEAT_STATUS_SECONDS": "5",
                        "TRADEBUS_INSTANCE_ID": "e2e-hti"})
        elif name in ("produce-anthid", "produce-anthid-2"):  # -2: a second producer on the same upstream
            http_port = self.ports[name]
            argv = [py, "-m", "tradebus.cli", "produce", "anthid"]
            env.update({"TRADEBUS_ANTHID_TARGET": f"127.0.0.1:{self.ports['sim-anthid']}",
                        "TRADEBUS_ANTHID_TLS": "false", "TRADEBUS_ANTHID_API_KEY": o.anthid_key,
                        "TRADEBUS_ANTHID_HEARTBEAT_TIMEOUT_SECONDS": "5",
                        "TRADEBUS_ANTHID_HEARTBEAT_STATUS_SECONDS": "5",
                        "TRADEBUS_ANTHID_BACKOFF_MAX_SECONDS": "2",
                        "TRADEBUS_INSTANCE_ID": "e2e-" + name.removeprefix("produce-")})
        elif name in WORKERS:
            worker = name.split("-", 1)[1]
            http_port = self.ports[name]
            argv = [py, "-m", "tradebus.cli", "consume", worker]
            w = worker.upper()
            env.update({f"TRADEBUS_{w}_GROUP": f"{self.prefix}{worker}",
                        f"TRADEBUS_{w}_SESSION_TIMEOUT_MS": "6000",
                        "TRADEBUS_INSTANCE_ID": f"e2e-{worker}"})
            if worker == "store":
                env["TRADEBUS_DATABASE_URL"] = self.database_url
            if worker == "alerts":
                env["TRADEBUS_ALERTS_RULES_FILE"] = str(self.rules_path)
        else:
            raise KeyError(name)
        if http_port:
            env["TRADEBUS_HTTP_PORT"] = str(http_port)
        env.update(o.extra_env.get("*", {}))
        env.update(o.extra_env.get(name, {}))
        return Proc(name, argv, env, self.workdir / "logs" / f"{name}.log", http_port)

    # ------------------------------------------------------------------- lifecycle
    def start(self, ready_timeout: float = 90.0) -> "Pipeline":
        from tradebus.topics_cli import ensure_topics

        ensure_stack()
        self.rules_path.write_text(self.options.rules_yaml)
        create_pg_schema(self.schema)
        ensure_topics(self.common)
        self._topics_created = True
        self.wait_topics_usable()
        order = [n for n in (*SIMS, *WORKERS, *PRODUCERS, "produce-anthid-2") if n in self.options.components]
        for name in order:
            proc = self.procs[name] = self.spec(name)
            proc.start()
            if name in SIMS:
                self.wait_sim(name, 60)
        self.wait_ready([n for n in order if n not in SIMS], ready_timeout)
        self.note("pipeline ready")
        if self.options.supervise:
            threading.Thread(target=self._supervise, name="e2e-supervisor", daemon=True).start()
        return self

    def _supervise(self) -> None:
        while not self._closing.wait(0.5):
            with self._lock:
                for name, proc in self.procs.items():
                    if proc.process is None or proc.alive or proc.held_down or self._closing.is_set():
                        continue
                    code = proc.wait(1)
                    last = [line[:400] for line in proc.tail(40).splitlines()
                            if '"ERROR"' in line or '"CRITICAL"' in line or "Error" in line][-2:]
                    self.crashes.append({"process": name, "exit_code": code,
                                         "t": round(time.time() - self.started_at, 1), "last_errors": last})
                    self.note(f"{name} exited by itself ({code}); restarting it like Kubernetes would")
                    time.sleep(2)
                    proc.start()

    def wait_topics_usable(self, timeout: float = 60.0) -> None:
        """Until every partition of this prefix's topics has a leader that answers
        (freshly created topics take a moment; production topics exist long before
        the processes start)."""
        from confluent_kafka import Consumer, KafkaException, TopicPartition

        consumer = Consumer({**self.common.kafka.client_conf(), "group.id": f"e2e-probe-{uuid.uuid4().hex[:8]}"})
        try:
            deadline = time.monotonic() + timeout
            pending = None
            while time.monotonic() < deadline:
                meta = consumer.list_topics(timeout=10).topics
                pending = []
                for name, topic in meta.items():
                    if not name.startswith(self.prefix):
                        continue
                    for p in topic.partitions:
                        try:
                            consumer.get_watermark_offsets(TopicPartition(name, p), timeout=5)
                        except KafkaException as exc:
                            pending.append(f"{name}[{p}]: {exc.args[0].name()}")
                if not pending:
                    return
                time.sleep(1.0)
            raise TimeoutError(f"topics not usable after {timeout:.0f}s: {pending[:5]}")
        finally:
            consumer.close()

    def wait_sim(self, name: str, timeout: float = 60.0) -> None:
        proc = self.procs[name]

        def up():
            if not proc.alive:
                raise RuntimeError(f"{name} exited ({proc.process.returncode}):\n{proc.tail()}")
            if self.options.real_sims:
                return listening(self.ports[name])
            return "simproc ready" in proc.log_text().split(f"start #{proc.starts} of {name}")[-1]

        wait_for(up, timeout, 0.3, f"{name} to listen")

    def wait_ready(self, names: Iterable[str], timeout: float = 90.0) -> None:
        pending = list(names)
        deadline = time.monotonic() + timeout
        while pending:
            pending = [n for n in pending if not self.procs[n].ready()]
            if not pending:
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"not ready after {timeout:.0f}s: {pending}\n" +
                                   "\n".join(f"--- {n}:\n{self.procs[n].tail(15)}" for n in pending))
            time.sleep(0.5)

    def __enter__(self) -> "Pipeline":
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc) -> None:
        self.close()

    def stop_all(self, grace: float = 30.0) -> dict[str, int | None]:
        self._closing.set()
        codes = {}
        for name in reversed(list(self.procs)):
            if name in SIMS:
                continue
            codes[name] = self.procs[name].stop(grace)
        for name in SIMS:
            if name in self.procs:
                codes[name] = self.procs[name].stop(grace)
        return codes

    def close(self) -> None:
        try:
            self.stop_all(20)
        finally:
            if self._topics_created and not os.environ.get("TRADEBUS_E2E_KEEP"):
                self.delete_topics()
            if not os.environ.get("TRADEBUS_E2E_KEEP"):
                drop_pg_schema(self.schema)

    def delete_topics(self) -> None:
        from confluent_kafka.admin import AdminClient

        try:
            admin = AdminClient(self.common.kafka.client_conf())
            names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(self.prefix)]
            if names:
                for future in admin.delete_topics(names, operation_timeout=30).values():
                    try:
                        future.result()
                    except Exception:
                        pass
            url = self.common.kafka.schema_registry_url
            for subject in requests.get(f"{url}/subjects", timeout=10).json():
                if subject.startswith(self.prefix):
                    requests.delete(f"{url}/subjects/{subject}", timeout=10)
        except Exception:
            pass  # best effort: a leftover topic only costs disk

    # -------------------------------------------------------------------- control
    def note(self, what: str, **details) -> None:
        self.events.append({"t": round(time.time() - self.started_at, 1), "what": what, **details})

    def sim(self, which: str, action: str, **params) -> dict:
        if self.options.real_sims:
            return {}  # the plain commands have no control endpoint
        port = self.ports[f"ctl-{which}"]
        r = requests.post(f"http://127.0.0.1:{port}/{action}", params=params, timeout=15)
        r.raise_for_status()
        return r.json().get("result") or {}

    def resume(self) -> None:
        for which in ("hti", "anthid"):
            if f"sim-{which}" in self.procs:
                self.sim(which, "resume")
        self.note("generation resumed")

    def pause(self) -> None:
        for which in ("hti", "anthid"):
            if f"sim-{which}" in self.procs and self.procs[f"sim-{which}"].alive:
                self.sim(which, "pause")
        self.note("generation paused")

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        with self._lock:
            if name == "consume-dedup":
                self.dedup_dropped_seen += metric_sum(proc.metrics(), "tradebus_dedup_dropped_total")
            proc.held_down = True
            proc.kill()
        self.note(f"SIGKILL {name}", exit_code=proc.exit_codes[-1] if proc.exit_codes else None)

    def stop(self, name: str) -> int | None:
        proc = self.procs[name]
        with self._lock:
            proc.held_down = True
        code = proc.stop()
        self.note(f"stopped {name}", exit_code=code)
        return code

    def restart(self, name: str, wait_ready: bool = True, timeout: float = 90.0, **env) -> None:
        proc = self.procs[name]
        with self._lock:
            proc.held_down = True
        if proc.alive:
            if name == "consume-dedup":
                self.dedup_dropped_seen += metric_sum(proc.metrics(), "tradebus_dedup_dropped_total")
            proc.stop()
        proc.env.update(env)
        with self._lock:
            proc.start()
            proc.held_down = False
        if name in SIMS:
            self.wait_sim(name, 60)
        elif wait_ready:
            self.wait_ready([name], timeout)
        self.note(f"restarted {name}")

    def excuse(self, start: float, end: float, sources: tuple[str, ...], why: str) -> None:
        """Versions emitted upstream in [start, end] (epoch seconds) may be missing from
        the store for a reason outside tradebus (an upstream without replay); they are
        reported separately instead of failing the check."""
        self.excused.append({"start": start, "end": end, "sources": sources, "why": why})

    def metrics(self, name: str) -> str:
        return self.procs[name].metrics() if name in self.procs else ""

    # ------------------------------------------------------------------- settling
    def store_counts(self) -> dict[str, int]:
        from consumers.store.db import Store

        try:
            with Store.open(self.database_url, migrate=False) as store:
                return {t: store.count(t) for t in ("idea_versions", "order_events", "trades", "intent_actions",
                                                    "positions", "alerts")}
        except Exception:
            return {}

    def settle(self, timeout: float = 60.0, quiet_s: float = 12.0, pause: bool = True) -> dict:
        """Stop generation, then wait until the store matches the ledgers, or has
        not changed for ``quiet_s``, or ``timeout``. Returns how it ended."""
        if pause:
            self.pause()
        started = time.monotonic()
        last, last_change = None, time.monotonic()
        outcome = "timeout"
        while time.monotonic() - started < timeout:
            counts = self.store_counts()
            if counts != last:
                last, last_change = counts, time.monotonic()
            verify = self.verify_store()
            if verify["ok"]:
                outcome = "matched"
                break
            if not self._all_ready():
                last_change = time.monotonic()  # a worker still starting or rebalancing is not "quiet"
            if time.monotonic() - last_change >= quiet_s and time.monotonic() - started >= quiet_s:
                outcome = "quiet"
                break
            time.sleep(1.0)
        took = round(time.monotonic() - started, 1)
        self.note("settled", outcome=outcome, seconds=took)
        return {"outcome": outcome, "seconds": took}

    def _all_ready(self) -> bool:
        for proc in self.procs.values():
            if proc.held_down or proc.http_port is None:
                continue
            try:
                if not proc.ready():
                    return False
            except RuntimeError:  # exited: the supervisor (if any) restarts it
                return False
        return True

    def keep_logs(self) -> Path:
        """Copy every child's log next to the results (pytest's tmp dirs are recycled)."""
        import shutil

        target = RESULTS_DIR / "logs" / self.scenario
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True, exist_ok=True)
        for proc in self.procs.values():
            if proc.log_path.exists():
                shutil.copy(proc.log_path, target / proc.log_path.name)
        return target

    # -------------------------------------------------------------------- verify
    def ledger(self, which: str) -> list[dict]:
        from tradebus.tools.verify import read_ledger

        path = self.hti_ledger if which == "hti" else self.anthid_ledger
        return read_ledger(str(path)) if path.exists() else []

    def _excused(self, source: str, emitted_at: float) -> bool:
        return any(source in w["sources"] and w["start"] <= emitted_at <= w["end"] for w in self.excused)

    def verify_store(self) -> dict:
        """The store against both ledgers with tradebus.tools.verify; missing
        versions emitted inside an excused window are split out."""
        from consumers.store.db import Store
        from tradebus.tools.verify import compare, expected_anthid, expected_hti, stored

        try:
            with Store.open(self.database_url, migrate=False) as store:
                actual = stored(store)
        except Exception as exc:
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "kinds": {}}
        kinds: dict[str, dict] = {}
        if "sim-hti" in self.procs:
            entries = self.ledger("hti")
            emitted = {}
            for e in entries:
                if e.get("kind") == "idea":
                    emitted.setdefault((e["idea_id"], e["LAST_UPDATE"]), float(e["emitted_at"]))
            result = compare(expected_hti(entries), actual["ideas"])
            kinds["ideas"] = self._split(result, lambda k: emitted.get(_tuple(k)), "hti")
        if "sim-anthid" in self.procs:
            entries = self.ledger("anthid")
            exp = expected_anthid(entries)
            emitted = self._anthid_emitted(entries)
            for kind in ("orders", "trades", "intent_actions"):
                result = compare(exp[kind], actual[kind])
                kinds[kind] = self._split(result, lambda k, kind=kind: emitted[kind].get(k), "anthid")
            wrong = sorted(str(k) for k, v in exp["positions"].items()
                           if actual["positions"].get(k, (None,))[0] != v[0])
            kinds["positions"] = {"expected": len(exp["positions"]), "stored": len(actual["positions"]),
                                  "missing": wrong, "extra": [], "doubled": [], "excused": []}
        ok = all(not (r["missing"] or r["extra"] or r["doubled"]) for r in kinds.values())
        return {"ok": ok, "kinds": kinds}

    def _split(self, result: dict, emitted_at: Callable[[str], float | None], source: str) -> dict:
        missing, excused = [], []
        for key in result["missing"]:
            t = emitted_at(key)
            (excused if t is not None and self._excused(source, t) else missing).append(key)
        return {**result, "missing": missing, "excused": excused}

    @staticmethod
    def _anthid_emitted(entries: list[dict]) -> dict[str, dict[str, float]]:
        """Identity (as verify prints it) -> emitted_at, per kind, for live ledger lines."""
        from tradebus.tools.verify import expected_anthid

        out: dict[str, dict[str, float]] = {"orders": {}, "trades": {}, "intent_actions": {}}
        for e in entries:
            if e.get("replay") or e.get("fault"):
                continue
            one = expected_anthid([e])
            for kind in out:
                for key in one[kind]:
                    out[kind].setdefault(str(key), parse_time(e["emitted_at"]))
        return out

    # -------------------------------------------------------------------- counts
    def topic_census(self) -> dict:
        """Committed records per topic, duplicates on the unique topics (by the
        dedup identity), DLQ records by source and reason, status by kind, alerts."""
        from consumers.dedup.identity import KINDS, digest
        from tradebus.serde import AvroRecordDeserializer, registry_client
        from tradebus.topics import ALERTS, DATA_TOPICS, DLQ, STATUS, UNIQUE_TOPICS, TopicNames

        names = TopicNames(self.prefix)
        client = registry_client(self.common.kafka)
        census: dict = {"raw": {}, "unique": {}, "unique_duplicates": {}, "dlq": {}, "status": {}, "alerts": 0}
        for topic in DATA_TOPICS:
            census["raw"][topic.name] = len(read_topic(self.common, names(topic)))
            unique = UNIQUE_TOPICS[topic.name]
            records = read_topic(self.common, names(unique))
            census["unique"][topic.name] = len(records)
            decode = AvroRecordDeserializer(client, topic.value_schema)
            kind, identity = KINDS[topic.name]
            seen = Counter(digest(identity(decode(m.value()))) for m in records)
            census["unique_duplicates"][topic.name] = sum(n - 1 for n in seen.values() if n > 1)
        decode = AvroRecordDeserializer(client, DLQ.value_schema)
        dlq = Counter()
        self.dlq_records = []
        for m in read_topic(self.common, names(DLQ)):
            r = decode(m.value())
            dlq[f"{r['source']}/{r['stage']}/{(r.get('details') or {}).get('reason_code', r['error_type'])}"] += 1
            self.dlq_records.append(r)
        census["dlq"] = dict(dlq)
        decode = AvroRecordDeserializer(client, STATUS.value_schema)
        self.status_records = [decode(m.value()) for m in read_topic(self.common, names(STATUS))]
        census["status"] = dict(Counter(f"{r['source']}/{r['kind']}" for r in self.status_records))
        decode = AvroRecordDeserializer(client, ALERTS.value_schema)
        self.alert_records = [decode(m.value()) for m in read_topic(self.common, names(ALERTS))]
        census["alerts"] = len(self.alert_records)
        return census

    def emitted_counts(self) -> dict:
        hti = self.ledger("hti")
        anthid = self.ledger("anthid")
        out = {"hti": dict(Counter(e.get("kind") for e in hti))}
        live = Counter(e["kind"] for e in anthid if not e.get("replay") and not e.get("fault"))
        out["anthid"] = {**dict(live), "replays": sum(1 for e in anthid if e.get("replay")),
                         "unconvertible": sum(1 for e in anthid if e.get("fault") and not e.get("replay"))}
        return out

    # --------------------------------------------------------------------- check
    def check(self, *, extra_problems: Iterable[str] = (), expect_alive: Iterable[str] | None = None,
              info: dict | None = None, require_traffic: bool = True, stop: bool = True) -> CheckResult:
        """Final comparison, counts, results file. Call after settle(). With
        ``stop``, every process is then stopped with SIGTERM and must exit 0."""
        problems = list(extra_problems)
        alive = {n: p.alive for n, p in self.procs.items()}
        for name in (expect_alive if expect_alive is not None else self.procs):
            if not alive.get(name):
                problems.append(f"{name} is not running at the end (exit codes {self.procs[name].exit_codes})")
        for crash in self.crashes:
            problems.append(f"{crash['process']} exited by itself ({crash['exit_code']}) at t={crash['t']}s and "
                            f"was restarted: {crash['last_errors'][-1:]}")
        verify = self.verify_store()
        for kind, r in verify.get("kinds", {}).items():
            for label in ("missing", "extra", "doubled"):
                if r[label]:
                    problems.append(f"{kind}: {len(r[label])} {label} (e.g. {r[label][:2]})")
        if verify.get("error"):
            problems.append(f"store unreadable: {verify['error']}")
        census = self.topic_census()
        for topic, dups in census["unique_duplicates"].items():
            if dups:
                problems.append(f"{topic}.unique: {dups} duplicate records (exactly-once broken)")
        emitted = self.emitted_counts()
        stored = self.store_counts()
        if require_traffic:
            if "sim-hti" in self.procs and not emitted["hti"].get("idea"):
                problems.append("the HTI simulator emitted nothing")
            if "sim-anthid" in self.procs and not sum(v for k, v in emitted["anthid"].items()
                                                     if k not in ("replays", "unconvertible")):
                problems.append("the Anthid simulator emitted nothing")
        dropped_metric = self.dedup_dropped_seen + metric_sum(self.metrics("consume-dedup"), "tradebus_dedup_dropped_total")
        exit_codes = {}
        if stop:
            exit_codes = {n: c for n, c in self.stop_all(30).items() if alive.get(n)}
            for name, code in exit_codes.items():
                if code != 0:
                    problems.append(f"{name} exited {code} on SIGTERM (expected a clean 0)")
        raw_total = sum(census["raw"].values())
        unique_total = sum(census["unique"].values())
        dedup_dlq = sum(n for k, n in census["dlq"].items() if k.startswith("dedup/"))
        report = {
            "scenario": self.scenario,
            "ok": not problems,
            "problems": problems,
            "prefix": self.prefix,
            "schema": self.schema,
            "workdir": str(self.workdir),
            "duration_s": round(time.time() - self.started_at, 1),
            "emitted": emitted,
            "stored": stored,
            "topics": census,
            "duplicates_dropped": {"by_topics": raw_total - unique_total - dedup_dlq,
                                   "dedup_metric": dropped_metric},
            "dlq_records": sum(census["dlq"].values()),
            "verify": {k: {**{x: r[x] for x in ("expected", "stored")},
                           **{x: len(r[x]) for x in ("missing", "extra", "doubled", "excused")},
                           "missing_sample": r["missing"][:10], "extra_sample": r["extra"][:10],
                           "doubled_sample": r["doubled"][:10]}
                       for k, r in verify.get("kinds", {}).items()},
            "excused_windows": self.excused,
            "timeline": self.events,
            "processes": {n: {"alive_at_check": alive[n], "starts": p.starts, "exit_codes": p.exit_codes}
                          for n, p in self.procs.items()},
            "shutdown_exit_codes": exit_codes,
            "crashes": self.crashes,
            **(info or {}),
        }
        if problems:
            report["logs"] = str(self.keep_logs())
        write_result(report)
        return CheckResult(self.scenario, not problems, problems, report)


def _tuple(text: str):
    """verify.compare() prints identities with str(); HTI identities are 2-tuples of strings."""
    try:
        import ast

        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def write_result(report: dict) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{report['scenario']}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    SESSION_RESULTS[:] = [r for r in SESSION_RESULTS if r["scenario"] != report["scenario"]]
    SESSION_RESULTS.append(report)


def summary_row(report: dict) -> dict:
    emitted = report.get("emitted", {})
    # Versions that each become one row (positions are checked as latest-per-key, not counted here).
    hti = emitted.get("hti", {}).get("idea", 0)
    anthid = sum(v for k, v in emitted.get("anthid", {}).items() if k in ("broker_order", "broker_trade", "intent_action"))
    stored = report.get("stored", {})
    data_rows = sum(stored.get(t, 0) for t in ("idea_versions", "order_events", "trades", "intent_actions"))
    dup = report.get("duplicates_dropped", {})
    missing = sum(v.get("missing", 0) for v in report.get("verify", {}).values())
    excused = sum(v.get("excused", 0) for v in report.get("verify", {}).values())
    return {"scenario": report["scenario"], "ok": report.get("ok"), "emitted": hti + anthid,
            "stored": data_rows, "dups_dropped": dup.get("by_topics", "-"), "dlq": report.get("dlq_records", "-"),
            "missing": missing, "excused": excused, "secs": report.get("duration_s", "-")}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
