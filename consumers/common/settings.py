"""Per-worker settings: consumer group and batch schedule, from environment
variables named after the worker, with command-line flags on top.

For a worker called ``store``: ``TRADEBUS_STORE_GROUP`` (tradebus-store),
``TRADEBUS_STORE_BATCH_SIZE``, ``TRADEBUS_STORE_FLUSH_MS``,
``TRADEBUS_STORE_SESSION_TIMEOUT_MS`` (45000), and the common
``TRADEBUS_HTTP_PORT`` / ``TRADEBUS_INSTANCE_ID`` / ``TRADEBUS_TOPIC_PREFIX``.
Flags (``--group``, ``--batch-size``, ``--flush-ms``, ``--http-port``,
``--instance-id``, ``--topic-prefix``) win over the environment: they are
written into the environment mapping before it is read, so validation and
error messages are the same whichever way a value came in.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from tradebus.config import Env

# Flags every worker accepts -> the environment variable each one overrides.
# "{W}" is the worker's name in upper case.
COMMON_FLAGS = {
    "group": "TRADEBUS_{W}_GROUP",
    "batch_size": "TRADEBUS_{W}_BATCH_SIZE",
    "flush_ms": "TRADEBUS_{W}_FLUSH_MS",
    "http_port": "TRADEBUS_HTTP_PORT",
    "instance_id": "TRADEBUS_INSTANCE_ID",
    "topic_prefix": "TRADEBUS_TOPIC_PREFIX",
}


@dataclass(frozen=True)
class WorkerSettings:
    """What the shared consumer loop needs to know about one worker."""

    name: str  # dedup, store, alerts: metric label and env-var infix
    group: str
    batch_size: int  # a batch is handed over at this many records...
    flush_ms: int  # ...or this long after its first record, whichever comes first
    lag_interval_s: float = 10.0  # how often the consumer-lag gauge is refreshed
    # How long the group waits for a member that stopped heartbeating (killed,
    # partitioned) before giving its partitions to others.
    session_timeout_ms: int = 45_000

    @classmethod
    def from_env(cls, env: Env, name: str, *, batch_size: int, flush_ms: int) -> "WorkerSettings":
        w = name.upper()
        return cls(
            name=name,
            group=env.str(f"TRADEBUS_{w}_GROUP", f"tradebus-{name}"),
            batch_size=env.int(f"TRADEBUS_{w}_BATCH_SIZE", batch_size, min=1, max=1_000_000),
            flush_ms=env.int(f"TRADEBUS_{w}_FLUSH_MS", flush_ms, min=1, max=600_000),
            lag_interval_s=env.float("TRADEBUS_CONSUMER_LAG_INTERVAL_SECONDS", 10.0, min=0.5, max=3600.0),
            session_timeout_ms=env.int(f"TRADEBUS_{w}_SESSION_TIMEOUT_MS", 45_000, min=1000, max=3_600_000),
        )


def add_worker_arguments(parser: argparse.ArgumentParser, name: str, *, batch_size: int, flush_ms: int,
                         http_port: int) -> None:
    """Add the flags every worker has; defaults shown come from the environment."""
    w = name.upper()
    parser.add_argument("--group", help=f"consumer group (TRADEBUS_{w}_GROUP, default tradebus-{name})")
    parser.add_argument("--batch-size", type=int, help=f"records per batch (TRADEBUS_{w}_BATCH_SIZE, default {batch_size})")
    parser.add_argument("--flush-ms", type=int, help=f"max batch age in ms (TRADEBUS_{w}_FLUSH_MS, default {flush_ms})")
    parser.add_argument("--http-port", type=int, help=f"/metrics /healthz /readyz port, 0 = off (TRADEBUS_HTTP_PORT, default {http_port})")
    parser.add_argument("--instance-id", help="this process's id (TRADEBUS_INSTANCE_ID, default: host name)")
    parser.add_argument("--topic-prefix", help="topic name prefix (TRADEBUS_TOPIC_PREFIX)")


def env_from_args(args: argparse.Namespace, name: str, extra_flags: dict[str, str] | None = None,
                  environ: dict[str, str] | None = None) -> Env:
    """The process environment with every flag that was given written over it.

    ``extra_flags`` maps a worker's own flags (argparse dest) to variables,
    e.g. ``{"window_seconds": "TRADEBUS_DEDUP_WINDOW_SECONDS"}``.
    """
    merged = dict(os.environ if environ is None else environ)
    flags = {**COMMON_FLAGS, **(extra_flags or {})}
    for dest, variable in flags.items():
        value = getattr(args, dest, None)
        if value is not None:
            merged[variable.replace("{W}", name.upper())] = str(value)
    return Env(merged)
