"""`tradebus produce anthid` as a process: a wrong key exits 3 with a clear
message and no key anywhere in its output; SIGTERM stops intake, flushes,
publishes `stopped` and exits 0."""

from __future__ import annotations

import signal

from tests.integration.producers.anthid.conftest import API_KEY, tradebus_subprocess, wait_until
from tradebus.topics import STATUS


def process_env(common, sim, key: str) -> dict:
    return {
        "TRADEBUS_TOPIC_PREFIX": common.topic_prefix, "TRADEBUS_HTTP_PORT": "0", "TRADEBUS_INSTANCE_ID": "it-process",
        "TRADEBUS_ANTHID_API_KEY": key, "TRADEBUS_LOG_FORMAT": "json", "TRADEBUS_KAFKA_LINGER_MS": "1",
    }


def test_wrong_key_exits_3_clearly_without_the_key(start_sim, common, topics):
    sim = start_sim(rate=5.0)
    wrong = "sk-wrong-9f8e7d6c5b4a"
    proc = tradebus_subprocess(["produce", "anthid", "--target", sim.target, "--plaintext"], process_env(common, sim, wrong))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert "UNAUTHENTICATED" in err and "TRADEBUS_ANTHID_API_KEY" in err
    assert wrong not in err and wrong not in out


def test_sigterm_flushes_and_exits_0(start_sim, common, reader):
    sim = start_sim(rate=30.0)
    proc = tradebus_subprocess(["produce", "anthid", "--target", sim.target, "--plaintext"], process_env(common, sim, API_KEY))
    try:
        wait_until(lambda: any(s["kind"] == "connected" for s in reader.values(STATUS)), timeout=60, interval=0.5,
                   message="the producer attached")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert API_KEY not in err and API_KEY not in out
    assert "every record acknowledged" in err
    kinds = [s["kind"] for s in reader.values(STATUS)]
    assert kinds[0] == "started" and kinds[-1] == "stopped"
