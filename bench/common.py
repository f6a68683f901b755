"""Helpers every benchmark uses: where results go, percentiles, process memory."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"


def write_results(name: str, results: dict, markdown: str) -> Path:
    """bench/results/<name>.json (figures) and <name>.md (the table people read)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    results = {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **results}
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2, default=str))
    (RESULTS / f"{name}.md").write_text(markdown.rstrip() + "\n")
    return RESULTS / f"{name}.json"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the process's peak resident set size so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def delete_topics_at_exit(kafka_settings, prefix: str) -> None:
    """When the benchmark process ends (normally or by an exception), delete the
    topics of its own prefix, so that runs do not pile partitions up on the broker."""
    import atexit

    def delete() -> None:
        from confluent_kafka.admin import AdminClient

        try:
            admin = AdminClient(kafka_settings.client_conf())
            names = [n for n in admin.list_topics(timeout=10).topics if n.startswith(prefix)]
            for future in admin.delete_topics(names).values() if names else ():
                future.result(30)
        except Exception as exc:  # a cleanup failure must not hide the figures
            print(f"could not delete the {prefix}* topics: {exc}")

    atexit.register(delete)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")
