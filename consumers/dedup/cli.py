"""`tradebus consume dedup [--group G] [--batch-size N] [--flush-ms T] [--window-seconds S] ...`"""

from __future__ import annotations

from consumers.common import add_worker_arguments, env_from_args, run_worker
from consumers.dedup.worker import BATCH_SIZE, FLUSH_MS, HTTP_PORT, DedupSettings, DedupWorker
from tradebus.config import CommonSettings

EXTRA_FLAGS = {"window_seconds": "TRADEBUS_DEDUP_WINDOW_SECONDS", "max_entries": "TRADEBUS_DEDUP_MAX_ENTRIES"}


def register(parser) -> None:
    add_worker_arguments(parser, "dedup", batch_size=BATCH_SIZE, flush_ms=FLUSH_MS, http_port=HTTP_PORT)
    parser.add_argument("--window-seconds", type=int,
                        help="remember identities this long after first seen (TRADEBUS_DEDUP_WINDOW_SECONDS, default 86400)")
    parser.add_argument("--max-entries", type=int,
                        help="remember at most this many identities (TRADEBUS_DEDUP_MAX_ENTRIES, default 5000000)")
    parser.set_defaults(func=main)


def main(args) -> int:
    env = env_from_args(args, "dedup", EXTRA_FLAGS)
    common = CommonSettings.from_env(env, default_http_port=HTTP_PORT)
    settings = DedupSettings.from_env(env)
    return run_worker(common, lambda stop: DedupWorker(common, settings, stop=stop))
