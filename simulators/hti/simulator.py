"""The HTI simulator as an object: start it in-process, steer faults, stop it.

    sim = HtiSimulator(SimConfig(profiles=[unlimited_profile("code-1", "TEST")], port=0, rate=0)).start()
    sim.emit_burst(60)                # 60 idea versions now
    sim.fail_5xx(5); sim.stall(True)  # faults at run time
    sim.stop()
"""

from __future__ import annotations

import logging
import threading
import time

from simulators.hti.config import SimConfig
from simulators.hti.faults import Faults
from simulators.hti.hub import IdeaHub
from simulators.hti.ideas import IdeaGenerator, IdeaVersion
from simulators.hti.ledger import Ledger
from simulators.hti.profiles import ProfileRegistry
from simulators.hti.ratelimit import FixedWindowLimiter
from simulators.hti.server import HtiHttpServer
from simulators.hti.stream import StreamSession
from tradebus.config import ConfigError

log = logging.getLogger("tradebus.sim.hti")

MAX_BATCH = 1000  # versions emitted before the generator loop looks at its flags again


class HtiSimulator:
    def __init__(self, config: SimConfig):
        self.config = config.validate()
        self.profiles = ProfileRegistry(config.profiles)
        self.generator = IdeaGenerator(
            config.seed, fixed_est=config.fixed_est, update_probability=config.update_probability,
            multiline_probability=config.multiline_probability, extra_field=config.extra_field)
        self.hub = IdeaHub(config.history_size)
        self.limiter = FixedWindowLimiter()
        self.faults = Faults()
        self.ledger = Ledger(config.ledger_path, keep_in_memory=config.ledger_in_memory)
        self.stopping = False
        self._server: HtiHttpServer | None = None
        self._threads: list[threading.Thread] = []
        self._emit_lock = threading.Lock()  # one order for ledger, history and every stream
        self._sessions: set[StreamSession] = set()
        self._sessions_lock = threading.Lock()
        self._schedule = threading.Condition()
        self._rate = config.rate
        self._paused = False

    # -- lifecycle -----------------------------------------------------

    def start(self) -> "HtiSimulator":
        try:
            self._server = HtiHttpServer((self.config.host, self.config.port), self)
        except OSError as exc:
            raise ConfigError(f"--host/--port {self.config.host}:{self.config.port}: cannot listen ({exc.strerror})") from None
        if self.config.fail_5xx_for:
            self.faults.fail_5xx(self.config.fail_5xx_for)
        if self.config.fail_429_for:
            self.faults.fail_429(self.config.fail_429_for)
        self._spawn("hti-sim-http", lambda: self._server.serve_forever(poll_interval=0.1))
        self._spawn("hti-sim-generator", self._generate_loop)
        log.info("HTI simulator listening on %s (%d profile(s), %.3g ideas/s)",
                 self.base_url, len(self.profiles), self._rate)
        return self

    def _spawn(self, name: str, target) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        """Open streams get an error event and a clean end, then the server closes."""
        if self._server is None or self.stopping:
            return
        self.stopping = True
        with self._schedule:
            self._schedule.notify_all()
        for session in self.sessions():
            session.wake()
        deadline = time.monotonic() + min(timeout, 2.0)
        while self.stream_count() and time.monotonic() < deadline:
            time.sleep(0.02)
        for session in self.sessions():
            session.abort()  # stalled or stuck on a slow client
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout)
        self.ledger.close()
        log.info("HTI simulator stopped")

    def __enter__(self) -> "HtiSimulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    # -- generation ----------------------------------------------------

    def emit_burst(self, count: int) -> list[IdeaVersion]:
        """Generate ``count`` idea versions now, whatever the rate."""
        return [self._emit_one() for _ in range(count)]

    def set_rate(self, rate: float) -> None:
        with self._schedule:
            self._rate = rate
            self._schedule.notify_all()

    def pause_generation(self) -> None:
        with self._schedule:
            self._paused = True
            self._schedule.notify_all()

    def resume_generation(self) -> None:
        with self._schedule:
            self._paused = False
            self._schedule.notify_all()

    def _emit_one(self) -> IdeaVersion:
        with self._emit_lock:
            version = self.generator.next()
            self.ledger.record_idea(version, time.time())  # before any stream can send it
            self.hub.publish(version)
        return version

    def _generate_loop(self) -> None:
        """Keeps ``rate`` on average; a late loop catches up instead of dropping ideas."""
        while not self.stopping:
            with self._schedule:
                if self._paused or self._rate <= 0:
                    self._schedule.wait(0.5)
                    continue
                rate = self._rate
                base, emitted = time.monotonic(), 0
            while not self.stopping:
                due = int((time.monotonic() - base) * rate) - emitted
                for _ in range(min(due, MAX_BATCH)):
                    self._emit_one()
                emitted += max(0, min(due, MAX_BATCH))
                wait = base + (emitted + 1) / rate - time.monotonic()
                with self._schedule:
                    if self._paused or self._rate != rate:
                        break  # re-plan from now with the new setting
                    if wait > 0:
                        self._schedule.wait(min(wait, 0.5))

    # -- faults --------------------------------------------------------

    def drop_streams(self) -> int:
        """Cut every open stream's connection (no clean end); returns how many."""
        sessions = self.sessions()
        for session in sessions:
            session.abort()
        return len(sessions)

    def stall(self, stalled: bool = True) -> None:
        """While stalled, streams send nothing (no pings either) but stay open."""
        self.faults.stalled = stalled
        if not stalled:
            for session in self.sessions():
                session.wake()

    def fail_5xx(self, seconds: float) -> None:
        self.faults.fail_5xx(seconds)

    def fail_429(self, seconds: float) -> None:
        self.faults.fail_429(seconds)

    # -- inspection ----------------------------------------------------

    def ledger_entries(self) -> list[dict]:
        return self.ledger.entries()

    def sessions(self) -> list[StreamSession]:
        with self._sessions_lock:
            return list(self._sessions)

    def stream_count(self) -> int:
        with self._sessions_lock:
            return len(self._sessions)

    def wait_for_streams(self, count: int, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while self.stream_count() < count:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def _add_session(self, session: StreamSession) -> None:
        with self._sessions_lock:
            self._sessions.add(session)

    def _remove_session(self, session: StreamSession) -> None:
        with self._sessions_lock:
            self._sessions.discard(session)
