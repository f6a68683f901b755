"""Secrets never leave a tradebus process (issue 8 §2): every process runs with
known secrets, errors are driven through all of them, and no log line, /metrics
page, status event, dead letter or alert contains any of them.

Secrets: the HTI API code, the Anthid API key, a SASL password
(TRADEBUS_KAFKA_SASL_PASSWORD; security.protocol stays PLAINTEXT so librdkafka
ignores it, but it is read, registered and passed on), the schema registry's
basic-auth password, a PostgreSQL password (a role created for the test, so the
store really logs in with it) and the token in a webhook URL.

Errors driven: wrong HTI code and Anthid key (exit 3), the store with a wrong
password and with an unreachable database host (exit 2), both simulators
stopped mid-run and restarted (reconnect loops), each producer pointed at the
other simulator's port (protocol errors), a worker dying with an uncaught
exception (an incompatible schema), webhook deliveries failing.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid

import pytest
import requests

from tests.e2e.harness import (
    PG_BASE_URL, REPO, STACK_SH, Pipeline, PipelineOptions, drop_pg_schema, free_port, read_topic,
)
from tests.security.secrets_scan import SecretScan, make_secret

RULES_WITH_FAILING_WEBHOOK = """\
version: 1
defaults: {cooldown_seconds: 0, severity: info, sinks: [log]}
sinks:
  hook: {type: webhook, format: json, timeout_seconds: 1, max_attempts: 2, backoff_seconds: 0.1, breaker_failures: 3, breaker_seconds: 2}
rules:
  - name: every-idea
    kind: new_idea
    sinks: [log, hook]
"""


def pg_admin(sql: str) -> subprocess.CompletedProcess:
    """SQL as the local cluster's superuser, through the stack script's own helper."""
    script = f'set -euo pipefail; source {STACK_SH}; pg_root >/dev/null; pg_admin_psql -d tradebus -c "$SQL"'
    return subprocess.run(["bash", "-c", script], env={**os.environ, "SQL": sql}, capture_output=True, text=True,
                          timeout=60, cwd=REPO)


@pytest.fixture
def secret_pg_role():
    """A login role with a secret password owning a fresh schema; None when the
    cluster's superuser is out of reach (then the store uses the stack's password)."""
    role, password, schema = f"e2e_sec_{uuid.uuid4().hex[:8]}", make_secret("pg"), f"e2e_sec_{uuid.uuid4().hex[:8]}"
    made = pg_admin(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'; CREATE SCHEMA {schema} AUTHORIZATION {role};")
    if made.returncode != 0:
        yield None
        return
    yield {"role": role, "password": password, "schema": schema,
           "url": f"postgresql://{role}:{password}@127.0.0.1:5432/tradebus?options=-csearch_path%3D{schema}"}
    drop_pg_schema(schema)
    pg_admin(f"DROP SCHEMA IF EXISTS {schema} CASCADE; DROP ROLE IF EXISTS {role};")


def run_cli(args, env, timeout=60.0, stop_after: float | None = None) -> tuple[int, str]:
    """Run a tradebus command; with stop_after, SIGTERM it after that many seconds."""
    proc = subprocess.Popen([sys.executable, "-m", "tradebus.cli", *args], env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=stop_after if stop_after is not None else timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, _ = proc.communicate(timeout=40)
    return proc.returncode, out.decode("utf-8", "replace")


def test_no_secret_in_logs_metrics_or_topics(pipeline, secret_pg_role, tmp_path):
    s = {
        "HTI API code": make_secret("hti"),
        "Anthid API key": make_secret("anthid"),
        "SASL password": make_secret("sasl"),
        "registry password": make_secret("registry"),
        "webhook token": make_secret("hook"),
        "wrong HTI API code": make_secret("wronghti"),
        "wrong Anthid API key": make_secret("wronganthid"),
        "wrong PostgreSQL password": make_secret("wrongpg"),
    }
    if secret_pg_role:
        s["PostgreSQL password"] = secret_pg_role["password"]
    needles = dict(s)
    needles["registry basic-auth header"] = base64.b64encode(f"e2e:{s['registry password']}".encode()).decode()
    scan = SecretScan(needles)

    common_env = {
        "TRADEBUS_KAFKA_SASL_MECHANISM": "PLAIN",
        "TRADEBUS_KAFKA_SASL_USERNAME": "e2e",
        "TRADEBUS_KAFKA_SASL_PASSWORD": s["SASL password"],
        "TRADEBUS_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": f"e2e:{s['registry password']}",
        "TRADEBUS_LOG_LEVEL": "DEBUG",  # the most talkative setting: debug lines must be clean too
    }
    dead_port = free_port()
    options = PipelineOptions(
        real_sims=True, hti_code=s["HTI API code"], anthid_key=s["Anthid API key"],
        hti_args=("--malformed-every", "8"), anthid_args=("--unconvertible-every", "25"),
        rules_yaml=RULES_WITH_FAILING_WEBHOOK,
        database_url=secret_pg_role["url"] if secret_pg_role else None,
        extra_env={"*": common_env,
                   "consume-alerts": {"TRADEBUS_ALERTS_WEBHOOK_URL":
                                      f"http://127.0.0.1:{dead_port}/hook/{s['webhook token']}"}},
    )
    p: Pipeline = pipeline(options, scenario="security_secrets")
    outputs: dict[str, str] = {}

    def scrape(tag: str) -> None:
        for name, proc in p.procs.items():
            if proc.http_port:
                text = proc.metrics()
                scan.scan(f"/metrics of {name} ({tag})", text)
                try:
                    for path in ("/healthz", "/readyz"):
                        scan.scan(f"{path} of {name} ({tag})",
                                  requests.get(f"http://127.0.0.1:{proc.http_port}{path}", timeout=2).text)
                except requests.RequestException:
                    pass

    time.sleep(8)
    scrape("running")
    producer_env = {n: dict(p.procs[n].env) for n in ("produce-hti", "produce-anthid", "consume-store",
                                                     "consume-dedup")}

    # Bad credentials.
    env = {**producer_env["produce-hti"], "TRADEBUS_HTI_API_CODE": s["wrong HTI API code"], "TRADEBUS_HTTP_PORT": "0"}
    outputs["produce hti, wrong code"] = run_cli(["produce", "hti"], env)
    env = {**producer_env["produce-anthid"], "TRADEBUS_ANTHID_API_KEY": s["wrong Anthid API key"],
           "TRADEBUS_HTTP_PORT": "0"}
    outputs["produce anthid, wrong key"] = run_cli(["produce", "anthid"], env)
    store_env = {**producer_env["consume-store"], "TRADEBUS_HTTP_PORT": "0",
                 "TRADEBUS_STORE_GROUP": p.prefix + "store-wrong"}
    role = secret_pg_role["role"] if secret_pg_role else "tradebus"
    env = {**store_env, "TRADEBUS_DATABASE_URL":
           f"postgresql://{role}:{s['wrong PostgreSQL password']}@127.0.0.1:5432/tradebus"}
    outputs["consume store, wrong password"] = run_cli(["consume", "store"], env)
    env = {**store_env, "TRADEBUS_DATABASE_URL": p.database_url.replace("127.0.0.1:5432", "127.0.0.1:1")}
    outputs["consume store, wrong host"] = run_cli(["consume", "store"], env)

    # Network failures: both upstreams go away mid-run and come back.
    for sim in ("sim-hti", "sim-anthid"):
        p.stop(sim)
    time.sleep(8)
    scrape("upstreams down")
    for sim in ("sim-hti", "sim-anthid"):
        p.restart(sim)
    time.sleep(6)

    # Exceptions: each producer talks to the wrong protocol; a worker dies on an incompatible schema.
    env = {**producer_env["produce-hti"], "TRADEBUS_HTTP_PORT": "0", "TRADEBUS_INSTANCE_ID": "sec-hti-x",
           "TRADEBUS_HTI_SERVER_URL": f"http://127.0.0.1:{p.ports['sim-anthid']}"}
    outputs["produce hti against a gRPC port"] = run_cli(["produce", "hti"], env, stop_after=8)
    env = {**producer_env["produce-anthid"], "TRADEBUS_HTTP_PORT": "0", "TRADEBUS_INSTANCE_ID": "sec-anthid-x",
           "TRADEBUS_ANTHID_TARGET": f"127.0.0.1:{p.ports['sim-hti']}"}
    outputs["produce anthid against an HTTP/1 port"] = run_cli(["produce", "anthid"], env, stop_after=8)
    prefix = f"sec{uuid.uuid4().hex[:8]}."
    url = p.common.kafka.schema_registry_url
    subject = f"{prefix}hti.ideas.unique.v1-value"
    requests.post(f"{url}/subjects/{subject}/versions", timeout=10, json={"schema": json.dumps(
        {"type": "record", "name": "Incompatible", "fields": [{"name": "only", "type": "int"}]})})
    try:
        env = {**producer_env["consume-dedup"], "TRADEBUS_HTTP_PORT": "0", "TRADEBUS_TOPIC_PREFIX": prefix,
               "TRADEBUS_DEDUP_GROUP": prefix + "dedup"}
        outputs["consume dedup, incompatible schema"] = run_cli(["consume", "dedup"], env)
    finally:
        requests.delete(f"{url}/subjects/{subject}", timeout=10)

    time.sleep(3)
    scrape("after errors")
    codes = p.stop_all(30)
    p.note("stopped", exit_codes=codes)

    # Everything that came out.
    for name, proc in p.procs.items():
        scan.scan(f"log of {name}", proc.log_text())
    for what, (code, out) in outputs.items():
        scan.scan(f"output of `{what}`", out)
    from tradebus.topics import ALERTS, DATA_TOPICS, DLQ, STATUS, TopicNames

    names = TopicNames(p.prefix)
    records = {}
    for topic in (STATUS, DLQ, ALERTS, *DATA_TOPICS):
        msgs = read_topic(p.common, names(topic))
        records[topic.name] = len(msgs)
        for m in msgs:
            scan.scan(f"topic {topic.name}", (m.key() or b"") + b" " + (m.value() or b""))
    store_rows = p.store_counts()

    report = {
        "scenario": "security_secrets", "leaks": scan.leaks, "scanned_bytes": scan.scanned,
        "exit_codes": {k: v[0] for k, v in outputs.items()}, "records": records, "store_rows": store_rows,
        "pg_secret_role": bool(secret_pg_role), "shutdown_exit_codes": codes,
        "messages": {k: [line[:300] for line in v[1].splitlines() if "ERROR" in line or "CRITICAL" in line
                         or line.startswith("tradebus")][-2:] for k, v in outputs.items()},
    }
    from tests.e2e.harness import write_result

    report["ok"] = not scan.leaks
    report["problems"] = scan.leaks[:20]
    write_result(report)

    assert not scan.leaks, "secrets leaked:\n" + "\n".join(scan.leaks[:20])
    # The test proves something only if the secrets were in use and the errors happened.
    assert records["hti.ideas.v1"] > 0 and records["tradebus.status.v1"] > 0 and records["tradebus.dlq.v1"] > 0, records
    assert records["tradebus.alerts.v1"] > 0, "no alert (with its failed webhook delivery) was written"
    assert sum(store_rows.get(t, 0) for t in ("idea_versions", "order_events")) > 0, store_rows
    assert report["exit_codes"]["produce hti, wrong code"] == 3
    assert report["exit_codes"]["produce anthid, wrong key"] == 3
    assert report["exit_codes"]["consume store, wrong password"] == 2
    assert report["exit_codes"]["consume store, wrong host"] == 2
    assert report["exit_codes"]["consume dedup, incompatible schema"] != 0
