"""`tradebus produce hti` as a process: a wrong code exits 3 at once with a
clear message and without the code; SIGTERM stops intake, flushes, exits 0;
/healthz and /readyz answer."""

import json
import signal
import socket
import subprocess
import time
import urllib.request

from tests.integration.producers.hti.conftest import API_CODE, TRADEBUS, REPO, subprocess_env, wait_until
from tradebus.topics import HTI_IDEAS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_wrong_code_exits_3_at_once_without_the_code(start_sim, common, topics):
    sim = start_sim()
    wrong = "wrong-9d8c7b6a5f4e"
    started = time.monotonic()
    result = subprocess.run([*TRADEBUS, "produce", "hti"], env=subprocess_env(common, sim, TRADEBUS_HTI_API_CODE=wrong),
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    elapsed = time.monotonic() - started
    assert result.returncode == 3, result.stderr
    assert elapsed < 20  # no retry storm (process start and schema registration included)
    assert "rejected the API code" in result.stderr and "HTTP 401" in result.stderr
    assert "TRADEBUS_HTI_API_CODE" in result.stderr  # says what to fix
    assert wrong not in result.stderr and wrong not in result.stdout
    assert "Traceback" not in result.stderr


def test_wrong_code_given_as_flag_is_not_echoed_either(start_sim, common, topics):
    sim = start_sim()
    wrong = "flagged-1a2b3c4d5e6f"
    env = subprocess_env(common, sim)
    result = subprocess.run([*TRADEBUS, "produce", "hti", "--api-code", wrong], env=env,
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 3
    assert "process list" in result.stderr  # the warning about --api-code
    assert wrong not in result.stderr


def test_sigterm_flushes_and_exits_0_with_health_endpoints(start_sim, common, reader):
    sim = start_sim()
    sim.emit_burst(10)
    port = free_port()
    env = subprocess_env(common, sim, TRADEBUS_HTI_API_CODE=API_CODE, TRADEBUS_HTTP_PORT=str(port))
    process = subprocess.Popen([*TRADEBUS, "produce", "hti"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=REPO)
    try:
        def ready():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                    return json.loads(response.read())["ready"]
            except OSError:
                return False

        wait_until(ready, timeout=40, message="/readyz 200")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            assert json.loads(response.read())["alive"] is True
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            metrics_text = response.read().decode()
        assert 'tradebus_upstream_connected{source="hti"} 1.0' in metrics_text
        assert API_CODE not in metrics_text
        sim.set_rate(20)
        time.sleep(2)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=40)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert API_CODE not in stderr
    sim.pause_generation()
    values = reader.values(HTI_IDEAS)
    assert len(values) >= 10 and len({(v["idea_id"], v["last_update_text"]) for v in values}) == len(values)
    kinds = [s["kind"] for s in reader.statuses()]
    assert kinds[0] == "started" and kinds[-1] == "stopped" and "connected" in kinds
