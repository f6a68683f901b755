"""`tradebus consume store [--group G] [--batch-size N] [--flush-ms T] [--database-url URL] ...`"""

from __future__ import annotations

from consumers.common import add_worker_arguments, env_from_args, run_worker
from consumers.store.worker import BATCH_SIZE, FLUSH_MS, HTTP_PORT, StoreSettings, StoreWorker
from tradebus.config import CommonSettings

EXTRA_FLAGS = {"database_url": "TRADEBUS_DATABASE_URL"}


def register(parser) -> None:
    add_worker_arguments(parser, "store", batch_size=BATCH_SIZE, flush_ms=FLUSH_MS, http_port=HTTP_PORT)
    parser.add_argument("--database-url", help="sqlite:///PATH or postgresql://... (TRADEBUS_DATABASE_URL, "
                                               "default sqlite:///./tradebus.db); prefer the variable for passwords")
    parser.set_defaults(func=main)


def main(args) -> int:
    env = env_from_args(args, "store", EXTRA_FLAGS)
    common = CommonSettings.from_env(env, default_http_port=HTTP_PORT)
    settings = StoreSettings.from_env(env)
    return run_worker(common, lambda stop: StoreWorker(common, settings, stop=stop))
