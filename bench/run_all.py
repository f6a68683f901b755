"""`make bench`: every benchmark in one go, one report, under 10 minutes.

Each benchmark runs as its own process (so memory figures are its own) and
writes bench/results/<name>.{json,md}; this collects them into
bench/results/REPORT.md: a summary of every figure against its target, each
benchmark's own table, and two plots (throughput.png, latency.png).

The whole run takes about 7 minutes on this machine (2 cores): every
benchmark is time-boxed (fixed measuring windows, record counts sized to
finish in seconds), and each one also has a hard limit (TIMEOUT_S) so that a
hung benchmark is reported as failed instead of holding the run.

    .venv/bin/python -m bench.run_all [NAME ...]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

from bench.common import REPO, RESULTS

BENCHMARKS = [
    ("kafka_perf", "Kafka's producer performance tool (the ceiling)"),
    ("hti_producer", "HTI producer"),
    ("anthid_producer", "Anthid producer"),
    ("store_worker", "Storage worker"),
    ("dedup_worker", "Dedup worker"),
    ("emit_to_row", "Emit to row visible in PostgreSQL"),
    ("alerts_latency", "Emit to alert latency"),
]
TIMEOUT_S = 360  # one benchmark; a hung one must not eat the whole run


def _get(data: dict, *path, default=None):
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return default
        data = data[key]
    return data


def _fmt(value, unit: str = "", digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}{unit}"


def _verdict(met) -> str:
    return "-" if met is None else ("met" if met else "**NOT met**")


def summary_rows(results: dict) -> list[tuple[str, str, str, str, str]]:
    """(benchmark, measure, figure, target, verdict) for every target of issues 3, 4 and 5."""
    rows = []
    hti = results.get("hti_producer")
    if hti:
        ratio = _get(hti, "throughput", "ratio_to_raw_fastavro")
        rows.append(("HTI producer", "throughput vs raw fastavro encode",
                     f"{_fmt(_get(hti, 'throughput', 'producer_ideas_per_s'), ' ideas/s')} = {_fmt(ratio, 'x', 2)}",
                     ">= 0.5x", _verdict(_get(hti, "met", "throughput_ratio"))))
        rows.append(("HTI producer", "emit -> ack p99 at 1,000 ideas/s",
                     _fmt(_get(hti, "latency", "1000", "p99_ms"), " ms", 1), "<= 10 ms",
                     _verdict(_get(hti, "met", "p99_ms_at_1000"))))
        rows.append(("HTI producer", "peak RSS, Kafka down, 10x burst",
                     _fmt(_get(hti, "memory_kafka_down", "peak_rss_mb"), " MB", 1), "<= 150 MB",
                     _verdict(_get(hti, "met", "peak_rss_mb"))))
    anthid = results.get("anthid_producer")
    if anthid:
        rows.append(("Anthid producer", "capacity vs protobuf decode + Avro encode",
                     f"{_fmt(_get(anthid, 'throughput', 'producer_capacity_events_per_s'), ' events/s')} = "
                     f"{_fmt(_get(anthid, 'throughput', 'ratio'), 'x', 2)}", ">= 0.5x",
                     _verdict(_get(anthid, "targets_met", "throughput"))))
        rows.append(("Anthid producer", "emit -> ack p99 at 1,000 events/s",
                     _fmt(_get(anthid, "latency", "p99_ms"), " ms", 1), "<= 10 ms",
                     _verdict(_get(anthid, "targets_met", "latency"))))
        rows.append(("Anthid producer", "peak RSS, Kafka down, 10x burst",
                     _fmt(_get(anthid, "memory", "peak_rss_mb"), " MB", 1), "<= 150 MB",
                     _verdict(_get(anthid, "targets_met", "memory"))))
    store = results.get("store_worker")
    if store:
        rows.append(("Storage worker", "rows/s into PostgreSQL",
                     _fmt(_get(store, "postgresql", "batched_rows_per_s"), " rows/s"), ">= 50,000 rows/s",
                     _verdict(_get(store, "met", "pg_rows_per_s"))))
        rows.append(("Storage worker", "batched / naive writer, PostgreSQL",
                     _fmt(_get(store, "postgresql", "ratio"), "x", 1), ">= 25x", _verdict(_get(store, "met", "pg_ratio"))))
        rows.append(("Storage worker", "rows/s into SQLite",
                     _fmt(_get(store, "sqlite", "batched_rows_per_s"), " rows/s"), ">= 50,000 rows/s",
                     _verdict(_get(store, "met", "sqlite_rows_per_s"))))
    dedup = results.get("dedup_worker")
    if dedup:
        rows.append(("Dedup worker", "events/s with transactions", _fmt(dedup.get("events_per_s"), " events/s"),
                     ">= 20,000 events/s", _verdict(dedup.get("met"))))
    row = results.get("emit_to_row")
    if row:
        rows.append(("Emit to row", "emit -> row visible in PostgreSQL p99 at 1,000 events/s",
                     f"{_fmt(_get(row, 'emit_to_visible_ms', 'p99_ms'), ' ms', 1)} "
                     f"(p50 {_fmt(_get(row, 'emit_to_visible_ms', 'p50_ms'), ' ms', 1)})",
                     "<= 50 ms", _verdict(row.get("target_met"))))
    alerts = results.get("alerts_latency")
    if alerts:
        for mix in alerts.get("mixes", []):
            rows.append(("Emit to alert", f"emit -> alert delivered p99, {mix['mix']}",
                         f"{_fmt(_get(mix, 'emit_to_delivered_ms', 'p99'), ' ms', 1)} "
                         f"(p50 {_fmt(_get(mix, 'emit_to_delivered_ms', 'p50'), ' ms', 1)})",
                         "<= 100 ms", _verdict(mix.get("target_met"))))
    perf = results.get("kafka_perf")
    if perf:
        for r in perf.get("rows", []):
            rows.append(("Kafka ceiling", f"ProducerPerformance, {r.get('source', '')} ({r['record_size']} B)",
                         _fmt(r["records_per_s"], " records/s"), "reference", "-"))
    return rows


def plot_throughput(path, results: dict) -> str | None:
    """Each producer and worker beside Kafka's own producer tool at the same record size."""
    plt = _pyplot()
    if plt is None:
        return None
    bars: list[tuple[str, float, str]] = []  # (label, records/s, group colour)
    perf = {r.get("source", ""): r["records_per_s"] for r in _get(results, "kafka_perf", "rows", default=[])}
    hti, anthid = results.get("hti_producer", {}), results.get("anthid_producer", {})
    store, dedup = results.get("store_worker", {}), results.get("dedup_worker", {})
    for label, value, group in [
        ("Kafka ProducerPerformance, HTI-size records", perf.get("HTI ideas"), "kafka"),
        ("HTI producer, feeder -> Kafka (capacity)", _get(hti, "throughput", "feeder", "ideas_per_s"), "producer"),
        ("HTI producer, simulator -> Kafka", _get(hti, "throughput", "simulator", "ideas_per_s"), "producer"),
        ("Kafka ProducerPerformance, Anthid-size records", perf.get("Anthid events"), "kafka"),
        ("Anthid producer, feeder -> Kafka (capacity)", _get(anthid, "throughput", "producer_capacity_events_per_s"), "producer"),
        ("Anthid producer, simulator -> Kafka", _get(anthid, "throughput", "events_per_s"), "producer"),
        ("Dedup worker, transactions (events/s)", dedup.get("events_per_s"), "worker"),
        ("Store writer -> PostgreSQL (rows/s)", _get(store, "postgresql", "batched_rows_per_s"), "worker"),
        ("Naive writer -> PostgreSQL (rows/s)", _get(store, "postgresql", "naive_rows_per_s"), "naive"),
        ("Store writer -> SQLite (rows/s)", _get(store, "sqlite", "batched_rows_per_s"), "worker"),
        ("Naive writer -> SQLite (rows/s)", _get(store, "sqlite", "naive_rows_per_s"), "naive"),
    ]:
        if isinstance(value, (int, float)) and value > 0:
            bars.append((label, float(value), group))
    if not bars:
        return None
    colours = {"kafka": "#4c72b0", "producer": "#55a868", "worker": "#dd8452", "naive": "#c44e52"}
    fig, ax = plt.subplots(figsize=(10, 0.42 * len(bars) + 1.6))
    labels = [b[0] for b in reversed(bars)]
    values = [b[1] for b in reversed(bars)]
    ax.barh(labels, values, color=[colours[b[2]] for b in reversed(bars)])
    for y, value in enumerate(values):
        ax.text(value * 1.05, y, f"{value:,.0f}", va="center", fontsize=8)
    ax.axvline(20_000, color="grey", linestyle=":", linewidth=1, label="dedup target: 20,000 events/s")
    ax.axvline(50_000, color="black", linestyle="--", linewidth=1, label="store target: 50,000 rows/s")
    ax.set_xscale("log")
    ax.set_xlim(min(values) / 2, max(values) * 4)
    ax.set_xlabel("records per second (log scale)")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
    ax.set_title("Throughput in one run, beside Kafka's own producer tool", pad=24)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def plot_latency(path, results: dict) -> str | None:
    """p50 and p99 of every latency measure at 1,000 events/s, with its target."""
    plt = _pyplot()
    if plt is None:
        return None
    hti, anthid = results.get("hti_producer", {}), results.get("anthid_producer", {})
    row, alerts = results.get("emit_to_row", {}), results.get("alerts_latency", {})
    series = [
        ("HTI emit -> Kafka ack", _get(hti, "latency", "1000", "p50_ms"), _get(hti, "latency", "1000", "p99_ms"), 10),
        ("Anthid emit -> Kafka ack", _get(anthid, "latency", "p50_ms"), _get(anthid, "latency", "p99_ms"), 10),
        ("emit -> row visible (PostgreSQL)", _get(row, "emit_to_visible_ms", "p50_ms"),
         _get(row, "emit_to_visible_ms", "p99_ms"), 50),
    ]
    for mix in alerts.get("mixes", []):
        series.append((f"emit -> alert ({mix['mix']})", _get(mix, "emit_to_delivered_ms", "p50"),
                       _get(mix, "emit_to_delivered_ms", "p99"), 100))
    series = [s for s in series if isinstance(s[1], (int, float)) and isinstance(s[2], (int, float))]
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(10, 0.75 * len(series) + 1.6))
    ys = list(range(len(series)))[::-1]
    height = 0.35
    ax.barh([y + height / 2 for y in ys], [s[1] for s in series], height, label="p50", color="#4c72b0")
    ax.barh([y - height / 2 for y in ys], [s[2] for s in series], height, label="p99", color="#dd8452")
    for y, (_, p50, p99, target) in zip(ys, series):
        ax.plot([target, target], [y - 0.45, y + 0.45], color="black", linewidth=2)
        ax.text(max(p99, target) * 1.08, y, f"p50 {p50:,.1f} / p99 {p99:,.1f} ms", va="center", fontsize=8)
    ax.set_yticks(ys)
    ax.set_yticklabels([f"{s[0]}\ntarget p99 <= {s[3]} ms" for s in series], fontsize=9)
    ax.set_xscale("log")
    ax.set_xlim(0.5, max(max(s[2] for s in series), 100) * 30)
    ax.set_xlabel("milliseconds at 1,000 events/s (log scale); black tick = the p99 target")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
    ax.set_title("Latency in one run: p50 and p99 against the p99 targets", pad=24)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the `bench` extra is not installed: the report goes without plots
        return None
    return plt


def run(names: list[str]) -> dict[str, dict]:
    runs = {}
    for name, title in BENCHMARKS:
        if name not in names:
            continue
        print(f"== {title} ({name})", flush=True)
        (RESULTS / f"{name}.json").unlink(missing_ok=True)  # a failed run must not report old figures
        (RESULTS / f"{name}.md").unlink(missing_ok=True)
        t0 = time.time()
        try:
            code = subprocess.call([sys.executable, "-m", f"bench.{name}"], cwd=REPO, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = "timeout"
        runs[name] = {"exit": code, "seconds": round(time.time() - t0, 1)}
        print(f"== {name}: exit {code} in {runs[name]['seconds']:.0f}s", flush=True)
    return runs


def report(runs: dict[str, dict], total_s: float, measured_at: str, load: list[float]) -> str:
    results = {}
    for name, _ in BENCHMARKS:
        path = RESULTS / f"{name}.json"
        if name in runs and path.exists():
            results[name] = json.loads(path.read_text())
    images = [plot_throughput(RESULTS / "throughput.png", results), plot_latency(RESULTS / "latency.png", results)]
    lines = [
        "# tradebus benchmark report", "",
        f"Measured {measured_at} by `make bench`: "
        f"{'all benchmarks' if len(runs) == len(BENCHMARKS) else ', '.join(runs)} in one run, {total_s:.0f} s in total, "
        f"on this machine: {os.cpu_count()} cores shared by Kafka, "
        f"Apicurio, PostgreSQL, the benchmark processes and any other work (load average at the end "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}). Kafka, the registry and PostgreSQL on loopback.", "",
        "## Summary: figures against targets", "",
        "| benchmark | measure | figure | target | |", "|---|---|---|---|---|",
        *[f"| {b} | {m} | {f} | {t} | {v} |" for b, m, f, t, v in summary_rows(results)], "",
    ]
    lines += [f"![{image.split('.')[0]}]({image})" for image in images if image] or ["_no plots: matplotlib (the `bench` extra) is not installed_"]
    lines += ["", "## Runs", "", "| benchmark | seconds | exit |", "|---|---:|---|"]
    lines += [f"| {name} | {r['seconds']:.0f} | {r['exit']} |" for name, r in runs.items()]
    lines += [f"| **total** | **{total_s:.0f}** | |", ""]
    for name, title in BENCHMARKS:
        if name not in runs:
            continue
        md = RESULTS / f"{name}.md"
        body = md.read_text().strip() if md.exists() else "_not measured: the benchmark failed_"
        if body.startswith("# "):  # a benchmark's own title: the section heading says it
            body = body.split("\n", 1)[1].strip() if "\n" in body else ""
        lines += [f"## {title}", "", body, ""]
    failed = [name for name, r in runs.items() if r["exit"] != 0]
    if failed:
        lines += [f"Failed benchmarks: {', '.join(failed)}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"only these ({', '.join(n for n, _ in BENCHMARKS)})")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: rebuild REPORT.md and the plots from the last run's results")
    args = parser.parse_args(argv)
    if args.report_only:
        last = json.loads((RESULTS / "run_all.json").read_text())
        (RESULTS / "REPORT.md").write_text(report(last["runs"], last["total_seconds"], last["measured_at"],
                                                  last["load_average_at_end"]))
        print(f"report: {RESULTS / 'REPORT.md'} (rebuilt from the run of {last['measured_at']})")
        return 0
    known = [n for n, _ in BENCHMARKS]
    unknown = [n for n in args.names if n not in known]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.time()
    runs = run(args.names or known)
    total = time.time() - started
    measured_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = [round(x, 1) for x in os.getloadavg()]
    (RESULTS / "run_all.json").write_text(json.dumps({"measured_at": measured_at, "total_seconds": round(total, 1),
                                                       "load_average_at_end": load, "runs": runs}, indent=2))
    (RESULTS / "REPORT.md").write_text(report(runs, total, measured_at, load))
    print(f"report: {RESULTS / 'REPORT.md'} ({total:.0f}s in total)")
    return 1 if any(r["exit"] != 0 for r in runs.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
