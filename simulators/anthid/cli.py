"""`tradebus sim anthid`: options and run(). Heavy imports (grpc, stubs) happen in run()."""

from __future__ import annotations

import argparse
import os

from simulators.anthid.orgs import DEFAULT_ACCOUNTS_PER_ORG

READY_LINE = "anthid-sim listening on"  # first stdout line once serving; subprocess tests wait for it


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Anthid trading event stream (gRPC, contract C) with generated order lifecycles. "
        "received_at on every data event is the simulator's emit time."
    )
    net = parser.add_argument_group("server")
    net.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    net.add_argument("--port", type=int, default=50051, help="listen port; 0 = any free port (default 50051)")
    net.add_argument("--tls-cert", metavar="PEM", help="serve TLS with this certificate (plaintext by default)")
    net.add_argument("--tls-key", metavar="PEM", help="private key for --tls-cert")
    net.add_argument("--connection-limit", type=int, default=100,
                     help="concurrent calls per organization; beyond it RESOURCE_EXHAUSTED (default 100)")
    net.add_argument("--max-workers", type=int, help="gRPC thread pool size (default: enough for every allowed call)")

    tenants = parser.add_argument_group("organizations")
    tenants.add_argument("--api-key", action="append", default=[], metavar="KEY[:ORG]",
                         help="accepted x-api-key and its organization name (repeatable; keys without ORG "
                              "share the `default` organization). Default: local-dev-key:local")
    tenants.add_argument("--orgs-file", metavar="PATH",
                         help="YAML/JSON file: organizations with name, api_keys, accounts (or account_count)")
    tenants.add_argument("--accounts-per-org", type=int, default=DEFAULT_ACCOUNTS_PER_ORG,
                         help=f"accounts of an organization given without a list (default {DEFAULT_ACCOUNTS_PER_ORG})")

    flow = parser.add_argument_group("events")
    flow.add_argument("--rate", type=float, default=20.0, help="data events per second per organization (default 20)")
    flow.add_argument("--seed", default="0", help="seed of the generator; same seed, same events (default 0)")
    flow.add_argument("--heartbeat-seconds", type=float, default=5.0, help="heartbeat interval; 0 = none (default 5)")
    flow.add_argument("--retention-seconds", type=float, default=3600.0,
                      help="how long terminal orders and flat positions stay replayable (default 3600)")
    flow.add_argument("--prefill-events", type=int, default=0,
                      help="events generated per organization before serving, so replay has state (default 0)")
    flow.add_argument("--generate-when-idle", action="store_true",
                      help="keep generating while no stream of an organization is subscribed (default: pause)")
    flow.add_argument("--ledger", metavar="PATH", help="append a JSON line per data event written to a stream")

    faults = parser.add_argument_group("faults")
    faults.add_argument("--end-stream-after", type=int, default=0, metavar="N",
                        help="end each stream with status OK after N data events (replays included)")
    faults.add_argument("--stall-heartbeats-after", type=float, metavar="SECONDS",
                        help="SECONDS after start, stop heartbeats, events and generation; streams stay open")
    faults.add_argument("--unavailable-for", type=float, default=0.0, metavar="SECONDS",
                        help="answer UNAVAILABLE to new calls for SECONDS after start")
    faults.add_argument("--unconvertible-every", type=int, default=0, metavar="N",
                        help="every Nth data event is a BrokerOrder a producer cannot convert, alternately "
                             "quantity '12..5' and no instrument")
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace):
    """SimConfig from parsed options; ConfigError names the bad option."""
    from simulators.anthid.orgs import OrgConfigError, OrgDirectory
    from simulators.anthid.server import DEFAULT_API_KEY_SPEC, SimConfig
    from tradebus.config import ConfigError

    checks = [
        ("--port", 0 <= args.port <= 65535),
        ("--connection-limit", args.connection_limit >= 1),
        ("--rate", args.rate >= 0),
        ("--heartbeat-seconds", args.heartbeat_seconds >= 0),
        ("--retention-seconds", args.retention_seconds > 0),
        ("--accounts-per-org", args.accounts_per_org >= 1),
        ("--prefill-events", args.prefill_events >= 0),
        ("--end-stream-after", args.end_stream_after >= 0),
        ("--unavailable-for", args.unavailable_for >= 0),
        ("--unconvertible-every", args.unconvertible_every >= 0),
        ("--stall-heartbeats-after", args.stall_heartbeats_after is None or args.stall_heartbeats_after >= 0),
        ("--max-workers", args.max_workers is None or args.max_workers >= 1),
    ]
    for option, ok in checks:
        if not ok:
            raise ConfigError(f"{option}: value out of range")
    if args.api_key and args.orgs_file:
        raise ConfigError("--api-key and --orgs-file are exclusive: use one")
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ConfigError("--tls-cert and --tls-key go together")
    for option, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key), ("--orgs-file", args.orgs_file)):
        if path and not os.path.isfile(path):
            raise ConfigError(f"{option} {path}: no such file")
    try:
        if args.orgs_file:
            directory = OrgDirectory.from_file(args.orgs_file, args.accounts_per_org)
        else:
            directory = OrgDirectory.from_key_specs(args.api_key or [DEFAULT_API_KEY_SPEC], args.accounts_per_org)
    except OrgConfigError as exc:
        raise ConfigError(str(exc)) from None
    seed: int | str = int(args.seed) if args.seed.lstrip("-").isdigit() else args.seed
    return SimConfig(
        directory=directory, host=args.host, port=args.port, rate=args.rate, seed=seed,
        heartbeat_seconds=args.heartbeat_seconds, retention_seconds=args.retention_seconds,
        connection_limit=args.connection_limit, ledger_path=args.ledger, tls_cert=args.tls_cert,
        tls_key=args.tls_key, end_stream_after=args.end_stream_after,
        stall_heartbeats_after=args.stall_heartbeats_after, unavailable_for=args.unavailable_for,
        unconvertible_every=args.unconvertible_every, generate_when_idle=args.generate_when_idle,
        prefill_events=args.prefill_events, max_workers=args.max_workers,
    )


def run(args: argparse.Namespace) -> int:
    from simulators.anthid.server import AnthidSimulator
    from tradebus.lifecycle import install_stop_handlers
    from tradebus.observability import setup_logging
    from tradebus.redaction import register_secret

    config = config_from_args(args)
    setup_logging(os.environ.get("TRADEBUS_LOG_LEVEL", "INFO"), os.environ.get("TRADEBUS_LOG_FORMAT", "json"))
    for key in config.directory.keys():
        register_secret(key)  # keys never reach the logs
    stop = install_stop_handlers()
    sim = AnthidSimulator(config)
    try:
        sim.start()
    except OSError as exc:
        print(f"tradebus sim anthid: {exc}", flush=True)
        return 1
    mode = "tls" if config.tls_cert else "plaintext"
    print(f"{READY_LINE} {sim.target} ({mode})", flush=True)
    for org in sim.organizations:
        print(f"  organization {org.name} {org.id} accounts {','.join(org.account_ids)}", flush=True)
    try:
        sim.wait(stop)
    finally:
        sim.stop()
    return 0
