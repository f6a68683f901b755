"""Faults while traffic flows; afterwards every emitted event version is in
the store exactly once and nothing else is (tests/e2e/harness.py).

HTI versions superseded while the stream is down cannot be recovered from
upstream (/history serves only the latest version of each idea, 50 at most),
so scenarios that interrupt the HTI stream run the HTI simulator with
--update-probability 0 and a rate the history page covers: every emitted
version stays reachable, and a missing one is the pipeline's fault.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.e2e.harness import (
    PRODUCERS, SIMS, WORKERS, PipelineOptions, restart_stack_service, stack_has_restart, write_result,
)

# Scenarios that cut the HTI stream: only the latest version of an idea survives an outage upstream.
NO_UPDATES = PipelineOptions(hti_update_probability=0.0)
# Two Anthid producers on the same upstream: every Anthid event is written twice to the raw
# topics, so the dedup worker has real duplicates to drop (and state to rebuild after a kill).
TWO_ANTHID_PRODUCERS = PipelineOptions(components=(*SIMS, *WORKERS, *PRODUCERS, "produce-anthid-2"))


def flow(seconds: float) -> None:
    time.sleep(seconds)


def count(census: dict, prefix: str) -> int:
    return sum(n for k, n in census.items() if k.startswith(prefix))


def settle_and_check_reconnects(p, source: str, at_least: int) -> None:
    """Settle, then: the producer of ``source`` connected at least this often
    (status events), and the store matches the ledgers."""
    p.settle()
    result = p.check()
    connects = count(result.report["topics"]["status"], f"{source}/connected")
    assert connects >= at_least, f"expected the {source} producer to connect at least {at_least} times, saw {connects}"
    result.assert_ok()


@pytest.mark.slow
def test_baseline_no_fault(pipeline):
    """No fault: the reference for the other scenarios' counts."""
    p = pipeline()
    p.resume()
    flow(15)
    p.settle()
    p.check().assert_ok()


def test_hti_stream_dropped_and_stalled(pipeline):
    """The HTI connection is cut under the producer, then the stream goes silent
    (socket open, no pings) until the producer's stall detection reconnects."""
    p = pipeline(NO_UPDATES)
    p.resume()
    flow(8)
    dropped = p.sim("hti", "drop")
    p.note("HTI streams dropped", **dropped)
    flow(8)
    p.sim("hti", "stall")
    p.note("HTI streams stalled")
    flow(8)
    p.sim("hti", "unstall")
    p.note("HTI streams unstalled")
    flow(6)
    settle_and_check_reconnects(p, "hti", at_least=3)


@pytest.mark.slow
def test_hti_sim_restarted_with_fault_switches(pipeline):
    """The HTI server is restarted twice with other fault switches: first every
    stream is closed cleanly after 40 events, then every stream goes silent 8 s
    after connecting. Each restart starts with an empty history."""
    p = pipeline(NO_UPDATES)
    p.resume()
    flow(6)
    proc = p.procs["sim-hti"]
    base_argv = list(proc.argv)
    for switches in (["--end-stream-after", "40"], ["--stall-after", "8"]):
        p.sim("hti", "pause")  # whatever was generated reaches the stream before the server goes
        flow(1)
        p.stop("sim-hti")
        proc.argv = [*base_argv, *switches]
        p.restart("sim-hti")
        p.sim("hti", "resume")
        p.note("HTI simulator restarted", switches=" ".join(switches))
        flow(16)
    settle_and_check_reconnects(p, "hti", at_least=5)


@pytest.mark.slow
def test_anthid_server_restarted(pipeline):
    """The Anthid server goes away (SIGTERM: streams end UNAVAILABLE) and comes
    back on the same port with fresh state (another seed)."""
    p = pipeline()
    p.resume()
    flow(8)
    proc = p.procs["sim-anthid"]
    p.stop("sim-anthid")
    flow(3)
    seed = proc.argv.index("--seed") + 1
    proc.argv[seed] = proc.argv[seed] + "-restarted"  # fresh order ids, as a real restart with new state
    p.restart("sim-anthid")
    p.sim("anthid", "resume")  # a restarted simproc starts paused like the first one
    flow(10)
    settle_and_check_reconnects(p, "anthid", at_least=2)


def test_hti_producer_sigkill(pipeline):
    """SIGKILL the HTI producer mid-flow, restart it: /history backfills the gap,
    the dedup worker drops what the dead producer had already written."""
    p = pipeline(NO_UPDATES)
    p.resume()
    flow(8)
    p.kill("produce-hti")
    flow(2)
    p.restart("produce-hti")
    flow(8)
    p.settle()
    p.check().assert_ok()


@pytest.mark.slow
def test_anthid_producer_sigkill(pipeline):
    """SIGKILL the Anthid producer mid-flow, restart it. Orders and positions come
    back through the primed replay; trades and intent actions have no replay
    upstream, so what the sim wrote to the dead connection is reported as
    `excused` (not failed) when it was emitted between the kill and the new attach."""
    p = pipeline()
    p.resume()
    flow(8)
    killed_at = time.time()
    p.kill("produce-anthid")
    flow(2)
    p.restart("produce-anthid")
    p.excuse(killed_at - 1.0, time.time() + 1.0, ("anthid",),
             "written by the simulator to the killed producer's connection; Anthid has no replay for them")
    flow(8)
    p.settle()
    p.check().assert_ok()


@pytest.mark.parametrize("worker", [
    "consume-dedup",
    pytest.param("consume-store", marks=pytest.mark.slow),
    pytest.param("consume-alerts", marks=pytest.mark.slow),
])
def test_worker_sigkill(pipeline, worker):
    """SIGKILL a worker while batches are in flight (dedup: inside a Kafka
    transaction; store: between database and offset commits), restart it.
    Two Anthid producers double every Anthid event upstream of the dedup worker,
    so identities seen before a kill must still be dropped after it."""
    p = pipeline(TWO_ANTHID_PRODUCERS)
    p.resume()
    flow(8)
    for _ in range(2):  # twice: the second kill lands on a freshly rebalanced worker
        p.kill(worker)
        flow(1)
        p.restart(worker)
        flow(4)
    flow(4)
    p.settle()
    result = p.check()
    raw, unique = result.report["topics"]["raw"], result.report["topics"]["unique"]
    anthid_raw = sum(n for t, n in raw.items() if t.startswith("anthid."))
    anthid_unique = sum(n for t, n in unique.items() if t.startswith("anthid."))
    assert anthid_raw >= 2 * anthid_unique - 50, f"expected every Anthid event twice upstream: raw {anthid_raw}, unique {anthid_unique}"
    result.assert_ok()


@pytest.mark.stack_restart
@pytest.mark.timeout(600)
def test_kafka_broker_restarted(pipeline):
    """The broker stops for a few seconds and comes back: producers keep their
    records queued (message.timeout.ms=0), workers retry, nothing is lost or doubled.
    A process that exits by itself is restarted as Kubernetes would, and reported."""
    p = pipeline(PipelineOptions(supervise=True))
    p.resume()
    flow(8)
    p.note("restarting Kafka")
    info = restart_stack_service("kafka")  # stack.sh restart kafka: a controlled shutdown takes a while
    p.note("Kafka back", **{"restart_s": info["seconds"], "via": "stack.sh restart" if stack_has_restart() else
                            "stack.sh functions (no restart command)"})
    flow(10)
    p.settle(timeout=120)
    p.check(info={"stack_restart": info}).assert_ok()


@pytest.mark.slow
@pytest.mark.stack_restart
@pytest.mark.timeout(900)
def test_kafka_broker_down_longer_than_transaction_timeout(pipeline):
    """The broker stays down 75 s: longer than the dedup worker's transaction
    timeout (60 s) and the consumer session timeout (45 s). Open transactions
    are aborted, consumer groups rebalance, producers' queues fill (backpressure);
    afterwards everything catches up, nothing lost or doubled."""
    p = pipeline(PipelineOptions(supervise=True))
    p.resume()
    flow(8)
    p.note("stopping Kafka for 75 s")
    info = restart_stack_service("kafka", down_s=75)
    p.note("Kafka back", restart_s=info["seconds"])
    flow(10)
    p.settle(timeout=240, quiet_s=30)
    p.check(info={"stack_restart": info}).assert_ok()


@pytest.mark.slow
@pytest.mark.stack_restart
@pytest.mark.timeout(600)
def test_postgres_restarted(pipeline):
    """PostgreSQL stops for a few seconds: the store worker retries its batch
    (readiness false meanwhile) and catches up; no row is lost or doubled.
    A process that exits by itself is restarted as Kubernetes would, and reported."""
    p = pipeline(PipelineOptions(supervise=True))
    p.resume()
    flow(8)
    p.note("restarting PostgreSQL")
    info = restart_stack_service("postgres", down_s=10)  # down long enough for several retries
    p.note("PostgreSQL back", restart_s=info["seconds"])
    flow(10)
    p.settle(timeout=90)
    store_metrics = p.metrics("consume-store")
    from tests.e2e.harness import metric_sum

    unavailable = metric_sum(store_metrics, "tradebus_worker_errors_total", reason="database_unavailable")
    result = p.check(info={"stack_restart": info, "store_database_unavailable_errors": unavailable})
    result.assert_ok()


class Webhook:
    """A webhook receiver the test can take down and bring back on the same port."""

    def __init__(self):
        from tests.e2e.harness import free_port

        self.port = free_port()
        self.received: list[tuple[float, dict]] = []
        self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook/e2e-token-7f3a"

    def start(self) -> None:
        import json as _json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    received.append((time.time(), _json.loads(body)))
                except ValueError:
                    received.append((time.time(), {"raw": body.decode(errors="replace")}))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


WEBHOOK_RULES = """\
version: 1
defaults: {cooldown_seconds: 0, severity: info, sinks: [log]}
sinks:
  hook:
    type: webhook
    url_env: E2E_WEBHOOK_URL
    format: json
    timeout_seconds: 2
    max_attempts: 2
    backoff_seconds: 0.2
    max_backoff_seconds: 1
    breaker_failures: 5
    breaker_seconds: 3
rules:
  - name: every-idea
    kind: new_idea
    sinks: [hook]
"""


@pytest.mark.slow
def test_webhook_sink_down(pipeline):
    """The webhook receiver is down for a minute (connection refused): alerts fired
    meanwhile are written to tradebus.alerts.v1 with a failed delivery, later
    ones are delivered, the alerts worker never stops, the data path is untouched."""
    hook = Webhook()
    hook.start()
    p = pipeline(PipelineOptions(rules_yaml=WEBHOOK_RULES,
                                 extra_env={"consume-alerts": {"E2E_WEBHOOK_URL": hook.url}}))
    try:
        p.resume()
        flow(6)
        down_at = time.time()
        hook.stop()
        p.note("webhook down")
        flow(60)
        up_at = time.time()
        hook.start()
        p.note("webhook up")
        flow(10)
        p.settle()
        alerts_alive = p.procs["consume-alerts"].alive
        result = p.check()
    finally:
        hook.stop()
    alerts = p.alert_records

    def hook_status(a):
        return next((d["status"] for d in a["deliveries"] if d["sink"] == "hook"), None)

    def fired(a):
        return a["fired_at"].timestamp()

    before = [a for a in alerts if fired(a) < down_at]
    during = [a for a in alerts if down_at + 1 < fired(a) < up_at - 1]
    after = [a for a in alerts if fired(a) > up_at + 5]  # the breaker may still be open for a moment
    summary = {
        "alerts": len(alerts), "webhook_posts_received": len(hook.received),
        "before": Counter(hook_status(a) for a in before), "during_outage": Counter(hook_status(a) for a in during),
        "after": Counter(hook_status(a) for a in after), "alerts_worker_alive": alerts_alive,
        "errors_seen": sorted({d["error"] for a in during for d in a["deliveries"] if d.get("error")})[:5],
    }
    result.report["webhook"] = {k: dict(v) if isinstance(v, Counter) else v for k, v in summary.items()}
    write_result(result.report)
    assert alerts_alive
    assert before and all(hook_status(a) == "delivered" for a in before), summary
    assert during and all(hook_status(a) == "failed" for a in during), summary
    assert after and all(hook_status(a) == "delivered" for a in after), summary
    assert not any(hook.url in e or "e2e-token-7f3a" in e for e in summary["errors_seen"]), "webhook URL in an error"
    result.assert_ok()
