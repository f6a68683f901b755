"""Bad inputs: each gives a clear error or a dead letter, and the pipeline stays up.

- malformed SSE / invalid JSON: the HTI sim's --malformed-every (alternately
  truncated JSON and a JSON object that is not an idea) plus injected events
  whose data breaks the SSE framing (lines without a field name, unknown
  fields, a bad retry value) -> tradebus.dlq.v1;
- unknown fields: --extra-field adds RISK_SCORE -> kept in unknown_fields;
- protobuf events that cannot convert: the Anthid sim's --unconvertible-every
  (invalid decimal, missing instrument) -> tradebus.dlq.v1;
- oversize payloads: an HTI idea with a 2 MB DESCRIPTION (larger than a Kafka record);
- wrong credentials: producers exit 3 naming the setting, without the secret;
- a schema-incompatible change: an incompatible version registered for a subject
  before start -> the process exits 1 with a message naming the subject.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import requests

from tests.e2e.harness import (
    ANTHID_KEY, HTI_CODE, REPO, PipelineOptions, write_result,
)


def flow(seconds: float) -> None:
    time.sleep(seconds)


def run_cli(args: list[str], env: dict[str, str], timeout: float = 90.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tradebus.cli", *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def test_bad_upstream_data_and_wrong_credentials(pipeline):
    p = pipeline(PipelineOptions(hti_args=("--malformed-every", "6", "--extra-field"),
                                 anthid_args=("--unconvertible-every", "20")))
    p.resume()
    flow(5)
    for _ in range(2):
        p.sim("hti", "inject_garbage")
    p.note("2 HTI events with broken SSE framing injected")

    # Wrong credentials against the same simulators, while the pipeline runs.
    wrong_code, wrong_key = "wrong-hti-code-" + uuid.uuid4().hex[:6], "wrong-anthid-key-" + uuid.uuid4().hex[:6]
    hti_env = {**p.procs["produce-hti"].env, "TRADEBUS_HTI_API_CODE": wrong_code, "TRADEBUS_HTTP_PORT": "0",
               "TRADEBUS_INSTANCE_ID": "e2e-wrong-hti"}
    anthid_env = {**p.procs["produce-anthid"].env, "TRADEBUS_ANTHID_API_KEY": wrong_key, "TRADEBUS_HTTP_PORT": "0",
                  "TRADEBUS_INSTANCE_ID": "e2e-wrong-anthid"}
    wrong_hti = run_cli(["produce", "hti"], hti_env)
    wrong_anthid = run_cli(["produce", "anthid"], anthid_env)
    p.note("wrong-credential producers ran", hti_exit=wrong_hti.returncode, anthid_exit=wrong_anthid.returncode)
    flow(6)
    p.settle()

    problems = []
    credentials = {}
    for name, result, secret, setting in (("hti", wrong_hti, wrong_code, "API code"),
                                          ("anthid", wrong_anthid, wrong_key, "TRADEBUS_ANTHID_API_KEY")):
        output = result.stdout + result.stderr
        last_error = [line for line in output.splitlines() if "error" in line.lower() or "refused" in line.lower()
                      or "rejected" in line.lower()][-3:]
        credentials[name] = {"exit_code": result.returncode, "message": last_error}
        if result.returncode != 3:
            problems.append(f"wrong {name} credentials: exit {result.returncode}, expected 3:\n{output[-1500:]}")
        if setting not in output:
            problems.append(f"wrong {name} credentials: the output does not name {setting!r}")
        if secret in output:
            problems.append(f"wrong {name} credentials: the secret itself is in the output")

    # Dead letters: one per broken upstream event.
    hti_ledger = p.ledger("hti")
    anthid_ledger = p.ledger("anthid")
    broken_hti = sum(1 for e in hti_ledger if e.get("kind") in ("malformed", "garbage"))
    unconvertible = sum(1 for e in anthid_ledger if e.get("fault") and not e.get("replay"))
    unknown = p_query(p, "SELECT count(*) AS n FROM idea_versions WHERE unknown_fields ? 'RISK_SCORE'")
    ideas = p_query(p, "SELECT count(*) AS n FROM idea_versions")
    result = p.check(extra_problems=problems, info={"credentials": credentials})
    dlq = result.report["topics"]["dlq"]
    hti_dlq = sum(n for k, n in dlq.items() if k.startswith("hti/"))
    anthid_dlq = sum(n for k, n in dlq.items() if k.startswith("anthid/"))
    result.report.update({"broken_hti_events": broken_hti, "unconvertible_anthid_events": unconvertible,
                          "ideas_with_unknown_field": unknown, "dlq_by_reason": dlq})
    write_result(result.report)
    assert broken_hti >= 3 and unconvertible >= 3, "the simulators injected too few faults to judge"
    assert hti_dlq == broken_hti, f"HTI: {broken_hti} broken events upstream, {hti_dlq} dead letters ({dlq})"
    assert anthid_dlq == unconvertible, f"Anthid: {unconvertible} unconvertible events, {anthid_dlq} dead letters ({dlq})"
    assert all(k.split("/")[1] in ("parse", "convert") for k in dlq), dlq
    for record in p.dlq_records:
        assert record["reason"] and record["payload"], f"dead letter without reason or payload: {record}"
    assert unknown == ideas > 0, f"RISK_SCORE kept in unknown_fields for {unknown} of {ideas} ideas"
    result.assert_ok()


def p_query(p, sql: str) -> int:
    from consumers.store.db import Store

    with Store.open(p.database_url, migrate=False) as store:
        return store.query(sql)[0]["n"]


def test_oversize_hti_idea(pipeline):
    """A 2 MB idea (DESCRIPTION) is more than one Kafka record may hold
    (librdkafka message.max.bytes 1 MB; the broker's default is the same): it
    must become a dead letter (truncated payload, with the reason) or a clear
    error, never a crash loop, and later ideas must still flow."""
    p = pipeline(PipelineOptions(components=("sim-hti", "consume-dedup", "consume-store", "produce-hti")))
    p.resume()
    flow(5)
    injected = p.sim("hti", "inject_oversize", bytes=2_000_000)
    p.note("oversize idea injected", **injected)
    flow(10)
    producer = p.procs["produce-hti"]
    alive = producer.alive
    crash = producer.tail(3)
    crash_loop = None
    if not alive:
        # The oversize idea is also in /history: does a restarted producer die again on the backfill?
        p.restart("produce-hti", wait_ready=False)
        time.sleep(15)
        crash_loop = not producer.alive
        p.note("restarted the dead HTI producer", died_again=crash_loop)
    p.settle()
    result = p.check(expect_alive=["sim-hti", "consume-dedup", "consume-store"],
                     info={"oversize": injected, "crash_loop_after_restart": crash_loop})
    dlq = result.report["topics"]["dlq"]
    oversize_dlq = [r for r in p.dlq_records if injected["idea_id"] in bytes(r["payload"][:2000]).decode("utf-8", "replace")
                    or injected["idea_id"] in json.dumps(r.get("details") or {})]
    result.report.update({"producer_alive_after_oversize": alive, "oversize_dead_letters": len(oversize_dlq),
                          "dlq_by_reason": dlq})
    write_result(result.report)
    assert alive, (f"the HTI producer died on an oversize idea (restarted, it died again: {crash_loop}):\n{crash[-1500:]}")
    assert oversize_dlq, f"no dead letter for the oversize idea {injected['idea_id']} ({dlq})"
    result.assert_ok()


INCOMPATIBLE = {"schema": json.dumps({"type": "record", "name": "Incompatible", "namespace": "e2e",
                                       "fields": [{"name": "only", "type": "int"}]})}


def incompatible_start(tmp_path, processes: list[tuple[str, list[str], str]]) -> None:
    """Register an incompatible version for each process's subject, start the
    process, expect exit 1 with a message naming the subject and no traceback."""
    from tradebus.config import CommonSettings, Env

    prefix = f"e2e{uuid.uuid4().hex[:8]}."
    common = CommonSettings.from_env(Env({"TRADEBUS_TOPIC_PREFIX": prefix}))
    url = common.kafka.schema_registry_url
    subjects = [prefix + subject for _, _, subject in processes]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEBUS_")}
    env.update({"TRADEBUS_TOPIC_PREFIX": prefix, "TRADEBUS_HTTP_PORT": "0", "TRADEBUS_LOG_FORMAT": "json",
                "TRADEBUS_HTI_SERVER_URL": "http://127.0.0.1:9", "TRADEBUS_HTI_API_CODE": HTI_CODE,
                "TRADEBUS_ANTHID_TARGET": "127.0.0.1:9", "TRADEBUS_ANTHID_TLS": "false",
                "TRADEBUS_ANTHID_API_KEY": ANTHID_KEY, "TRADEBUS_DEDUP_GROUP": f"{prefix}dedup",
                "TRADEBUS_STORE_GROUP": f"{prefix}store", "TRADEBUS_DATABASE_URL": f"sqlite:///{tmp_path}/store.db"})
    outcomes, problems = {}, []
    try:
        for subject in subjects:
            r = requests.post(f"{url}/subjects/{subject}/versions", json=INCOMPATIBLE, timeout=10)
            assert r.status_code == 200, r.text
        if any(args[0] == "consume" for _, args, _ in processes):
            from tradebus.topics import ALL_TOPICS
            from tradebus.topics_cli import ensure_topics

            # Topics only: their schemas would be refused here as well (the point of the test).
            ensure_topics(common, topics=[t for t in ALL_TOPICS if common.topic_prefix + t.name + "-value" not in subjects])
        for name, args, subject in processes:
            result = run_cli(args, env, timeout=60)
            output = (result.stdout + result.stderr).strip()
            outcomes[name] = {"exit_code": result.returncode, "last_lines": output.splitlines()[-2:]}
            if result.returncode != 1:
                problems.append(f"{name}: exit {result.returncode}, expected 1")
            if "incompatible" not in output or prefix + subject not in output:
                problems.append(f"{name}: the output does not say which subject is incompatible:\n{output[-1200:]}")
            if "Traceback" in output:
                problems.append(f"{name}: exits with a traceback (uncaught SchemaRegistrationError) instead of a "
                                "one-line message")
    finally:
        for subject in subjects:
            requests.delete(f"{url}/subjects/{subject}", timeout=10)
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(common.kafka.client_conf())
        names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
        for future in (admin.delete_topics(names).values() if names else []):
            try:
                future.result()
            except Exception:
                pass
    return outcomes, problems


def test_schema_incompatible_change_producers(stack, tmp_path):
    """An incompatible value schema is registered for the producers' subjects
    before they start: each exits 1 at start, naming the subject."""
    outcomes, problems = incompatible_start(tmp_path, [
        ("produce hti", ["produce", "hti"], "hti.ideas.v1-value"),
        ("produce anthid", ["produce", "anthid"], "anthid.broker-orders.v1-value"),
    ])
    write_result({"scenario": "schema_incompatible_change_producers", "ok": not problems, "problems": problems,
                  "outcomes": outcomes})
    assert not problems, "\n".join(problems)


def test_schema_incompatible_change_workers(stack, tmp_path):
    """The same for the workers: the dedup worker registers the unique subjects,
    every worker the DLQ subject."""
    outcomes, problems = incompatible_start(tmp_path, [
        ("consume dedup", ["consume", "dedup"], "hti.ideas.unique.v1-value"),
    ])
    write_result({"scenario": "schema_incompatible_change_workers", "ok": not problems, "problems": problems,
                  "outcomes": outcomes})
    assert not problems, "\n".join(problems)
