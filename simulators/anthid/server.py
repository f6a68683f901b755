"""AnthidSimulator: the gRPC server, one generator per organization, faults.

In-process use (tests)::

    sim = AnthidSimulator(SimConfig(port=0, heartbeat_seconds=0.2)).start()
    ... connect to f"127.0.0.1:{sim.port}" with x-api-key ...
    sim.end_all_streams(); sim.set_stall(True); sim.set_unavailable(2.0)
    sim.stop()
"""

from __future__ import annotations

import logging
import threading
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from simulators.anthid.emitter import Emitter
from simulators.anthid.faults import FaultSwitches
from simulators.anthid.generator import OrgEventGenerator
from simulators.anthid.hub import EventHub
from simulators.anthid.ledger import Ledger, NullLedger
from simulators.anthid.orgs import Organization, OrgDirectory
from simulators.anthid.service import ConnectionLimiter, TradingServicer
from tradebus.protos import pb_grpc

log = logging.getLogger(__name__)

DEFAULT_API_KEY_SPEC = "local-dev-key:local"


def _default_directory() -> OrgDirectory:
    return OrgDirectory.from_key_specs([DEFAULT_API_KEY_SPEC])


@dataclass
class SimConfig:
    directory: OrgDirectory = field(default_factory=_default_directory)
    host: str = "127.0.0.1"
    port: int = 50051  # 0 = any free port (see AnthidSimulator.port)
    rate: float = 20.0  # events per second per organization
    seed: int | str = 0
    heartbeat_seconds: float = 5.0  # 0 = no heartbeats
    retention_seconds: float = 3600.0
    connection_limit: int = 100  # concurrent calls per organization
    ledger_path: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    # faults
    end_stream_after: int = 0
    stall_heartbeats_after: float | None = None
    unavailable_for: float = 0.0
    unconvertible_every: int = 0
    # behaviour
    generate_when_idle: bool = False  # default: an org with no subscribed stream generates nothing
    prefill_events: int = 0  # events generated per org before serving (retained state to replay)
    max_workers: int | None = None  # gRPC thread pool; default fits every allowed stream
    stop_grace_seconds: float = 2.0


class AnthidSimulator:
    def __init__(self, config: SimConfig | None = None):
        self.config = config or SimConfig()
        c = self.config
        self.faults = FaultSwitches(end_stream_after=c.end_stream_after, stall_after=c.stall_heartbeats_after,
                                    unavailable_for=c.unavailable_for)
        self.hub = EventHub(c.directory.organizations, c.retention_seconds)
        self.limiter = ConnectionLimiter(c.connection_limit)
        self.ledger = Ledger(c.ledger_path) if c.ledger_path else NullLedger()
        self.generators = {
            org.id: OrgEventGenerator(org, c.seed, unconvertible_every=c.unconvertible_every)
            for org in c.directory.organizations
        }
        self._stop = threading.Event()
        self._server: grpc.Server | None = None
        self._emitters: list[Emitter] = []
        self._port: int | None = None

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> "AnthidSimulator":
        c = self.config
        for org_id, generator in self.generators.items():
            channel = self.hub.channel(org_id)
            for _ in range(c.prefill_events):
                channel.publish(generator.next_event())
        workers = c.max_workers or c.connection_limit * len(self.organizations) + 8
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="anthid-sim-rpc"),
                             options=[("grpc.so_reuseport", 0)])
        pb_grpc.add_TradingServiceServicer_to_server(
            TradingServicer(c.directory, self.hub, self.faults, self.limiter, self.ledger, c.heartbeat_seconds),
            server)
        host = f"[{c.host}]" if ":" in c.host else c.host
        address = f"{host}:{c.port}"
        try:
            if c.tls_cert or c.tls_key:
                if not (c.tls_cert and c.tls_key):
                    raise ValueError("TLS needs both a certificate and a key")
                credentials = grpc.ssl_server_credentials(
                    [(Path(c.tls_key).read_bytes(), Path(c.tls_cert).read_bytes())])
                port = server.add_secure_port(address, credentials)
            else:
                port = server.add_insecure_port(address)
        except RuntimeError as exc:
            raise OSError(f"cannot listen on {address}: {exc}") from None
        if not port:
            raise OSError(f"cannot listen on {address}")
        self._port = port
        self.faults.restart()
        server.start()
        self._server = server
        for org_id, generator in self.generators.items():
            emitter = Emitter(self.hub.channel(org_id), generator, c.rate, self.faults, self._stop,
                              generate_when_idle=c.generate_when_idle)
            emitter.start()
            self._emitters.append(emitter)
        log.info("anthid simulator listening on %s:%s", c.host, port)
        return self

    def stop(self, grace: float | None = None) -> None:
        if self._server is None:
            return
        grace = self.config.stop_grace_seconds if grace is None else grace
        self._stop.set()
        ended = self.end_all_streams(grpc.StatusCode.UNAVAILABLE, "server shutting down")
        log.info("anthid simulator stopping: %d open streams ended", ended)
        self._server.stop(grace).wait()
        for emitter in self._emitters:
            emitter.join(timeout=2)
        self.ledger.close()
        self._server = None
        log.info("anthid simulator stopped")

    def wait(self, stop: threading.Event) -> None:
        """Block until `stop` is set (signal handlers set it)."""
        while not stop.wait(0.5):
            pass

    def __enter__(self) -> "AnthidSimulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop(grace=0.5)

    # -- facts -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("simulator not started")
        return self._port

    @property
    def target(self) -> str:
        return f"{self.config.host}:{self.port}"

    @property
    def organizations(self) -> list[Organization]:
        return self.config.directory.organizations

    def connections(self, org_id: str) -> int:
        return self.limiter.count(org_id)

    # -- run-time faults ------------------------------------------------------------

    def end_all_streams(self, code: grpc.StatusCode | None = None, details: str = "stream ended by simulator") -> int:
        """End every open stream: with OK status, or with `code`. Returns how many."""
        sessions = self.hub.sessions()
        for session in sessions:
            session.end(code, details)
        return len(sessions)

    def set_stall(self, on: bool) -> None:
        """Stop (True) or resume (False) heartbeats, events and generation; streams stay open."""
        self.faults.set_stall(on)

    def set_unavailable(self, seconds: float) -> None:
        """Answer UNAVAILABLE to new calls for `seconds` from now (0 ends it)."""
        self.faults.set_unavailable(seconds)

    def set_end_stream_after(self, events: int) -> None:
        """End streams after this many data events from now on (0 = never); counts include earlier events."""
        self.faults.end_stream_after = events
