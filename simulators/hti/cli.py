"""`tradebus sim hti`: run the HTI simulator until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from simulators.hti.config import (
    ERROR_BODIES, EXPIRY_ACTIONS, SSE_FRAMINGS, STREAM_AUTH_ERRORS, SimConfig,
)
from simulators.hti.hub import HISTORY_ORDERS
from simulators.hti.profiles import load_profiles, unlimited_profile

FALLBACK_CODE_ENV = "TRADEBUS_HTI_API_CODE"  # the producer's code, so one env file serves both


def register(parser: argparse.ArgumentParser) -> None:
    """Adds the options to the `sim hti` parser and sets its func."""
    d = SimConfig()
    net = parser.add_argument_group("server")
    net.add_argument("--host", default=d.host, help="address to listen on (%(default)s)")
    net.add_argument("--port", type=int, default=d.port, help="port, 0 = any free one (%(default)s)")

    prof = parser.add_argument_group("API profiles")
    prof.add_argument("--api-code", action="append", default=[], metavar="CODE",
                      help=f"an unlimited profile with no filters (repeatable); default: ${FALLBACK_CODE_ENV}")
    prof.add_argument("--profiles", type=Path, metavar="FILE", help="YAML/JSON list of profiles (filters, validity, limits)")
    prof.add_argument("--request-limit", type=int, default=600, help="requests per minute for --api-code profiles (%(default)s)")

    gen = parser.add_argument_group("ideas")
    gen.add_argument("--rate", type=float, default=d.rate, help="idea versions per second, 0 = none (%(default)s)")
    gen.add_argument("--seed", type=int, default=None, help="random seed for reproducible ideas")
    gen.add_argument("--update-probability", type=float, default=d.update_probability,
                     help="share of versions that update an earlier idea (%(default)s)")
    gen.add_argument("--multiline-probability", type=float, default=d.multiline_probability,
                     help="share of new ideas with a multi-line DESCRIPTION (%(default)s)")
    gen.add_argument("--history-size", type=int, default=d.history_size, help="ideas kept for /history (%(default)s)")
    gen.add_argument("--ledger", type=Path, metavar="PATH", help="append a JSON line per generated version here")
    gen.add_argument("--fixed-est", action="store_true", help="idea times in fixed UTC-5 (default: US Eastern wall time, DST-aware)")
    gen.add_argument("--extra-field", action="store_true", help="add RISK_SCORE, a field producers must keep or ignore")

    api = parser.add_argument_group("behaviour the docs leave open")
    api.add_argument("--history-order", choices=HISTORY_ORDERS, default=d.history_order, help="(%(default)s)")
    api.add_argument("--clamp-params", action="store_true", help="clamp out-of-range limit/poll_seconds (default: 422)")
    api.add_argument("--error-body", choices=ERROR_BODIES, default=d.error_body, help="error body style (%(default)s)")
    api.add_argument("--no-retry-after", dest="retry_after_header", action="store_false", help="omit Retry-After on 429")
    api.add_argument("--no-count-stream-connects", dest="count_stream_connects", action="store_false",
                     help="stream connects do not use the request budget")
    api.add_argument("--stream-auth-errors", choices=STREAM_AUTH_ERRORS, default=d.stream_auth_errors,
                     help="bad code on /stream: HTTP status, or 200 then an error event (%(default)s)")
    api.add_argument("--on-expiry", choices=EXPIRY_ACTIONS, default=d.on_expiry,
                     help="profile expiring during an open stream (%(default)s)")

    sse = parser.add_argument_group("stream")
    sse.add_argument("--ping-seconds", type=float, default=None, help="ping interval (default: the stream's poll_seconds)")
    sse.add_argument("--plain-sse", action="store_true", help="no retry:, id: or comment lines")
    sse.add_argument("--multiline-data", action="store_true", help="spread idea JSON over several data: lines")
    sse.add_argument("--sse-framing", choices=SSE_FRAMINGS, default=d.sse_framing, help="HTTP/1.1 body framing (%(default)s)")
    sse.add_argument("--deliver-every-poll", action="store_true", help="hold ideas until the next poll tick (default: push at once)")

    faults = parser.add_argument_group("faults")
    faults.add_argument("--end-stream-after", type=int, metavar="N", help="close each stream cleanly after N events")
    faults.add_argument("--stall-after", type=float, metavar="SECONDS", help="each stream goes silent SECONDS after connecting")
    faults.add_argument("--malformed-every", type=int, metavar="N", help="every Nth idea event carries broken data")
    faults.add_argument("--duplicate-every", type=int, metavar="N", help="every Nth idea is sent twice")
    faults.add_argument("--error-event-after", type=int, metavar="N", help="after N events send an error event and close")
    faults.add_argument("--fail-5xx-for", type=float, default=0.0, metavar="SECONDS", help="answer 503 for SECONDS from start")
    faults.add_argument("--fail-429-for", type=float, default=0.0, metavar="SECONDS", help="answer 429 for SECONDS from start")
    parser.set_defaults(func=main)


def config_from_args(args: argparse.Namespace) -> SimConfig:
    profiles = load_profiles(args.profiles) if args.profiles else []
    codes = list(args.api_code)
    fallback = os.environ.get(FALLBACK_CODE_ENV, "").strip()
    if not codes and not profiles and fallback:
        codes = [fallback]
    profiles += [unlimited_profile(code, f"SIM ACCOUNT {i:02d}", args.request_limit) for i, code in enumerate(codes, 1)]
    return SimConfig(
        profiles=profiles, host=args.host, port=args.port, rate=args.rate, seed=args.seed,
        update_probability=args.update_probability, multiline_probability=args.multiline_probability,
        fixed_est=args.fixed_est, extra_field=args.extra_field, history_size=args.history_size,
        ledger_path=args.ledger, ledger_in_memory=False, history_order=args.history_order,
        clamp_params=args.clamp_params, error_body=args.error_body, retry_after_header=args.retry_after_header,
        count_stream_connects=args.count_stream_connects, stream_auth_errors=args.stream_auth_errors,
        on_expiry=args.on_expiry, ping_seconds=args.ping_seconds, plain_sse=args.plain_sse,
        multiline_data=args.multiline_data, sse_framing=args.sse_framing, deliver_every_poll=args.deliver_every_poll,
        end_stream_after=args.end_stream_after, stall_after=args.stall_after, malformed_every=args.malformed_every,
        duplicate_every=args.duplicate_every, error_event_after=args.error_event_after,
        fail_5xx_for=args.fail_5xx_for, fail_429_for=args.fail_429_for,
    ).validate()


def main(args: argparse.Namespace) -> int:
    from tradebus.observability import setup_logging

    setup_logging(os.environ.get("TRADEBUS_LOG_LEVEL", "INFO"), os.environ.get("TRADEBUS_LOG_FORMAT", "json"))
    return run(config_from_args(args))


def run(config: SimConfig) -> int:
    from simulators.hti.simulator import HtiSimulator
    from tradebus.lifecycle import install_stop_handlers

    stop = install_stop_handlers()
    sim = HtiSimulator(config).start()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        sim.stop()
    return 0
