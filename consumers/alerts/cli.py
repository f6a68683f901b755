"""`tradebus consume alerts [--rules FILE] [--check]`."""

from __future__ import annotations

import json

from consumers.alerts.rules import DEFAULT_RULES_FILE, RULES_FILE_ENV, load_rules, rules_path
from consumers.common import WorkerSettings, add_worker_arguments, env_from_args, run_worker
from tradebus.config import CommonSettings


def register(parser) -> None:
    from consumers.alerts.worker import DEFAULT_BATCH_SIZE, DEFAULT_FLUSH_MS, DEFAULT_HTTP_PORT

    add_worker_arguments(parser, "alerts", batch_size=DEFAULT_BATCH_SIZE, flush_ms=DEFAULT_FLUSH_MS, http_port=DEFAULT_HTTP_PORT)
    parser.add_argument("--rules", help=f"alert rule file ({RULES_FILE_ENV}, default $TRADEBUS_HOME/{DEFAULT_RULES_FILE})")
    parser.add_argument("--check", action="store_true", help="validate the rule file and the sink settings, print a summary, exit")
    parser.set_defaults(func=run)


def run(args) -> int:
    from consumers.alerts.sinks import build_sinks
    from consumers.alerts.worker import DEFAULT_BATCH_SIZE, DEFAULT_FLUSH_MS, DEFAULT_HTTP_PORT, AlertsOptions, AlertsWorker

    env = env_from_args(args, "alerts", {"rules": RULES_FILE_ENV})
    common = CommonSettings.from_env(env, default_http_port=DEFAULT_HTTP_PORT)
    settings = WorkerSettings.from_env(env, "alerts", batch_size=DEFAULT_BATCH_SIZE, flush_ms=DEFAULT_FLUSH_MS)
    options = AlertsOptions.from_env(env)
    ruleset = load_rules(rules_path(env))  # a bad file: ConfigError naming the line -> exit 2
    sinks = build_sinks(ruleset, env)
    if getattr(args, "check", False):
        print(json.dumps({
            "file": ruleset.path,
            "rules": [{"name": r.name, "kind": r.kind, "line": r.line, "sinks": list(r.sinks)} for r in ruleset.rules],
            "sinks": {name: sink.type for name, sink in sinks.items()},
        }, indent=2))
        return 0
    return run_worker(common, lambda stop: AlertsWorker(common, settings, options, ruleset, sinks, stop=stop))
