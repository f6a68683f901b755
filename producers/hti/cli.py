"""`tradebus produce hti`: HTI trade ideas (REST + SSE) -> hti.ideas.v1.

Exit codes: 0 stopped cleanly (SIGTERM/SIGINT, everything flushed); 1 records
left unacknowledged at shutdown, or a fatal Kafka/registry error; 2 bad
configuration (named); 3 the HTI API rejected the API code (401/403) or
refused the request at start (other 4xx) - not retried.
"""

from __future__ import annotations

import logging
import os

from tradebus.config import CommonSettings, Env

log = logging.getLogger("tradebus.producers.hti")

# flag -> the variable it overrides
FLAGS = {
    "server_url": "TRADEBUS_HTI_SERVER_URL",
    "api_code": "TRADEBUS_HTI_API_CODE",
    "history_limit": "TRADEBUS_HTI_HISTORY_LIMIT",
    "poll_seconds": "TRADEBUS_HTI_POLL_SECONDS",
}


def register(parser) -> None:
    parser.description = __doc__
    parser.add_argument("--server-url", help="base URL of the HTI API (TRADEBUS_HTI_SERVER_URL, default http://127.0.0.1:3500)")
    parser.add_argument("--api-code", help="the API code; prefer TRADEBUS_HTI_API_CODE (flags show in the process list)")
    parser.add_argument("--history-limit", help="ideas per /history call, 1..50 (TRADEBUS_HTI_HISTORY_LIMIT, default 50)")
    parser.add_argument("--poll-seconds", help="stream poll_seconds, 1.0..10.0 (TRADEBUS_HTI_POLL_SECONDS, default 2.0)")
    parser.set_defaults(func=main)


def main(args) -> int:
    from producers.hti.settings import DEFAULT_HTTP_PORT, HtiProducerSettings
    from tradebus.observability import setup_logging

    overrides = {var: str(getattr(args, name)) for name, var in FLAGS.items() if getattr(args, name, None) is not None}
    env = Env({**os.environ, **overrides})
    common = CommonSettings.from_env(env, default_http_port=DEFAULT_HTTP_PORT)
    setup_logging(common.log_level, common.log_format)
    settings = HtiProducerSettings.from_env(
        env, shutdown_timeout_s=common.shutdown_timeout_s,
        flag_names={var: "--" + name.replace("_", "-") for name, var in FLAGS.items() if var in overrides},
    )
    if "TRADEBUS_HTI_API_CODE" in overrides:
        log.warning("--api-code puts the API code in the process list; TRADEBUS_HTI_API_CODE (a secret) is safer")
    from producers.hti.run import run

    return run(settings, common)
