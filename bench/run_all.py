"""`make bench`: every benchmark in one go, one report.

Each benchmark runs as its own process (so memory figures are its own) and
writes bench/results/<name>.{json,md}; this collects them into
bench/results/REPORT.md with plots."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from bench.common import REPO, RESULTS

BENCHMARKS = [
    ("kafka_perf", "Kafka's producer performance tool (ceiling)"),
    ("hti_producer", "HTI producer"),
    ("anthid_producer", "Anthid producer"),
    ("store_worker", "Storage worker"),
    ("dedup_worker", "Dedup worker"),
    ("alerts_latency", "Emit to alert latency"),
]


def plot(path, results: dict) -> str | None:
    """Throughput of each producer against Kafka's ceiling, as a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    bars = {}
    for name, data in results.items():
        if name == "kafka_perf":
            for row in data.get("rows", []):
                bars[f"kafka-perf {row['record_size']}B"] = row["records_per_s"]
        else:
            for key, value in _flatten(data).items():
                if key.endswith(("per_s", "rows_per_s", "events_per_s", "ideas_per_s")) and isinstance(value, (int, float)):
                    bars[f"{name}:{key}"] = value
    if not bars:
        return None
    fig, ax = plt.subplots(figsize=(10, 0.4 * len(bars) + 1.5))
    ax.barh(list(bars), list(bars.values()))
    ax.set_xscale("log")
    ax.set_xlabel("records per second (log scale)")
    ax.set_title("tradebus throughput, measured side by side in one run")
    fig.tight_layout()
    fig.savefig(path)
    return path.name


def _flatten(data, prefix=""):
    flat = {}
    if isinstance(data, dict):
        for k, v in data.items():
            flat.update(_flatten(v, f"{prefix}{k}." if isinstance(v, dict) else f"{prefix}{k}"))
    else:
        flat[prefix.rstrip(".")] = data
    return flat


def main() -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.time()
    failed = []
    for name, title in BENCHMARKS:
        print(f"== {title} ({name})", flush=True)
        t0 = time.time()
        code = subprocess.call([sys.executable, "-m", f"bench.{name}"], cwd=REPO)
        print(f"== {name}: exit {code} in {time.time() - t0:.0f}s", flush=True)
        if code != 0:
            failed.append(name)
    results = {}
    for name, _ in BENCHMARKS:
        path = RESULTS / f"{name}.json"
        if path.exists():
            results[name] = json.loads(path.read_text())
    image = plot(RESULTS / "throughput.png", results)
    report = [f"# tradebus benchmark report", "",
              f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on this machine "
              f"(2 cores, loopback Kafka/Apicurio/PostgreSQL), total {time.time() - started:.0f}s.", ""]
    if image:
        report += [f"![throughput]({image})", ""]
    for name, title in BENCHMARKS:
        md = RESULTS / f"{name}.md"
        report += [f"## {title}", "", md.read_text() if md.exists() else "_not measured: the benchmark failed_", ""]
    if failed:
        report += ["", f"Failed benchmarks: {', '.join(failed)}"]
    (RESULTS / "REPORT.md").write_text("\n".join(report))
    print(f"report: {RESULTS / 'REPORT.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
