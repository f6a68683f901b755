"""`tradebus produce anthid`: flags for local use override the environment."""

from __future__ import annotations

import os

FLAG_TO_ENV = {
    "target": "TRADEBUS_ANTHID_TARGET",
    "accounts": "TRADEBUS_ANTHID_ACCOUNTS",
    "ca_file": "TRADEBUS_ANTHID_CA_FILE",
    "event_kinds": "TRADEBUS_ANTHID_EVENT_KINDS",
    "order_delivery": "TRADEBUS_ANTHID_ORDER_DELIVERY",
    "http_port": "TRADEBUS_HTTP_PORT",
}


def register(parser) -> None:
    parser.add_argument("--target", help="host:port of the Anthid gRPC endpoint (TRADEBUS_ANTHID_TARGET)")
    parser.add_argument("--plaintext", action="store_true", help="no TLS, for a local simulator (TRADEBUS_ANTHID_TLS=false)")
    parser.add_argument("--ca-file", help="CA bundle for the server certificate (TRADEBUS_ANTHID_CA_FILE)")
    parser.add_argument("--accounts", help="comma-separated account UUIDs; empty = org-wide (TRADEBUS_ANTHID_ACCOUNTS)")
    parser.add_argument("--event-kinds", help="subset of BROKER_ORDER,BROKER_POSITION,BROKER_TRADE,INTENT_ACTION")
    parser.add_argument("--order-delivery", choices=["PRIMED", "LIVE"], help="TRADEBUS_ANTHID_ORDER_DELIVERY")
    parser.add_argument("--http-port", type=int, help="metrics/health port, 0 = off (TRADEBUS_HTTP_PORT, default 9402)")
    parser.set_defaults(func=main)


def environment(args) -> dict[str, str]:
    environ = dict(os.environ)
    for flag, name in FLAG_TO_ENV.items():
        value = getattr(args, flag, None)
        if value is not None:
            environ[name] = str(value)
    if getattr(args, "plaintext", False):
        environ["TRADEBUS_ANTHID_TLS"] = "false"
    return environ


def main(args) -> int:
    # grpc, protobuf and the stubs load only when this command runs.
    from producers.anthid.run import run
    from producers.anthid.settings import DEFAULT_HTTP_PORT, AnthidProducerSettings
    from tradebus.config import CommonSettings, Env
    from tradebus.observability import setup_logging

    env = Env(environment(args))
    common = CommonSettings.from_env(env, default_http_port=DEFAULT_HTTP_PORT)
    settings = AnthidProducerSettings.from_env(env)
    setup_logging(common.log_level, common.log_format)
    return run(settings, common)
