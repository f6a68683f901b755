"""One open ``/stream`` connection: ready, pings, ideas, and injected faults."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from queue import Empty
from typing import TYPE_CHECKING

from simulators.hti.ideas import IdeaVersion
from simulators.hti.profiles import Profile
from simulators.hti.sse import KEEP_ALIVE_COMMENT, RETRY_LINE, SseWriter, encode_event, json_data_lines, open_event_stream
from simulators.hti.timefmt import iso_utc

if TYPE_CHECKING:
    from http.server import BaseHTTPRequestHandler

    from simulators.hti.simulator import HtiSimulator

MAX_WAIT = 0.25  # how long the loop sleeps before re-checking stop, drop and stall


class StreamSession:
    def __init__(self, sim: "HtiSimulator", handler: "BaseHTTPRequestHandler", profile: Profile, poll_seconds: float):
        self.sim = sim
        self.config = sim.config
        self.handler = handler
        self.profile = profile
        self.poll_seconds = poll_seconds
        self.subscription = None
        self.events_sent = 0  # every event, ready and pings included
        self.idea_events = 0  # events named "idea", broken ones included
        self.ideas_sent = 0
        self.malformed_sent = 0
        self._aborted = threading.Event()
        self._finish: str | None = None  # why the stream ends cleanly
        self._writer: SseWriter | None = None
        self._started = time.monotonic()

    @property
    def id(self) -> int:
        return self.subscription.id if self.subscription else 0

    # -- control from other threads ------------------------------------

    def abort(self) -> None:
        """Drop the connection under the client, without a clean end of body."""
        self._aborted.set()
        self.wake()
        try:
            self.handler.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def wake(self) -> None:
        if self.subscription is not None:
            self.subscription.queue.put(None)

    # -- the connection ------------------------------------------------

    def run(self) -> None:
        # Subscribed before the 200 goes out: a client that has the response misses nothing after it.
        self.subscription = self.sim.hub.subscribe(self.profile)
        self.sim._add_session(self)
        try:
            self._writer = open_event_stream(self.handler, self.config.sse_framing)
            self._serve()
        except (OSError, ValueError):
            pass  # the client went away, or the stream was dropped on purpose
        finally:
            self.sim.hub.unsubscribe(self.subscription)
            self.sim._remove_session(self)

    def _serve(self) -> None:
        config, out = self.config, []
        if not config.plain_sse:
            out.append(RETRY_LINE)
        connected_at = iso_utc(time.time())
        self._event(out, "ready", json_data_lines(
            {"connected_at": connected_at, "poll_seconds": self.poll_seconds,
             "profile": self.profile.to_payload(connected_at)}))
        self._flush(out)
        ping_every = config.ping_seconds or self.poll_seconds
        next_ping = self._started + ping_every
        next_poll = self._started + self.poll_seconds
        pings = 0
        while self._finish is None:
            if self._aborted.is_set():
                return
            if self.sim.stopping:
                if self._stalled():
                    return  # a stalled stream stays silent to the end
                self._error(out, "server shutting down")
                break
            if self._stalled():
                self._hold()
                continue
            if self.config.on_expiry != "keep" and self.profile.is_expired():
                if self.config.on_expiry == "error":
                    self._error(out, "API profile expired")
                self._finish = "expired"
                break
            now = time.monotonic()
            if config.deliver_every_poll:
                batch = []
                if now >= next_poll:
                    batch = self._drain()
                    next_poll = max(next_poll + self.poll_seconds, now)
                else:
                    self._aborted.wait(min(next_poll - now, next_ping - now, MAX_WAIT))
            else:
                batch = self._wait_and_drain(min(max(next_ping - now, 0.0), MAX_WAIT))
            for version in batch:
                self._idea(out, version)
            if self._finish is None and time.monotonic() >= next_ping:
                self._event(out, "ping", json_data_lines({"ts": iso_utc(time.time())}))
                pings += 1
                if not config.plain_sse and pings % 2 == 0:
                    out.append(KEEP_ALIVE_COMMENT)
                next_ping = max(next_ping + ping_every, time.monotonic())
            self._flush(out)
        self._flush(out)
        self._writer.end()

    # -- events --------------------------------------------------------

    def _event(self, out: list[bytes], name: str, data_lines: list[str], event_id: int | None = None) -> None:
        if self._finish is not None:
            return
        out.append(encode_event(name, data_lines, None if self.config.plain_sse else event_id))
        self.events_sent += 1
        if self.config.error_event_after and self.events_sent >= self.config.error_event_after:
            self._error(out, "simulated stream error")
        elif self.config.end_stream_after and self.events_sent >= self.config.end_stream_after:
            self._finish = "end-stream-after"

    def _error(self, out: list[bytes], detail: str) -> None:
        """The docs' error event: the server closes the stream after it."""
        if self._finish is None:
            out.append(encode_event("error", json_data_lines({"detail": detail})))
            self._finish = "error"

    def _idea(self, out: list[bytes], version: IdeaVersion) -> None:
        every = self.config.malformed_every
        if every and (self.idea_events + 1) % every == 0:
            self._malformed(out, version)
        if self._finish is not None:
            return
        lines = json_data_lines(version.idea, True) if self.config.multiline_data else [version.text]
        self.idea_events += 1
        self.ideas_sent += 1
        self._event(out, "idea", lines, version.version)
        if self.config.duplicate_every and self.ideas_sent % self.config.duplicate_every == 0:
            self.idea_events += 1
            self._event(out, "idea", lines, version.version)

    def _malformed(self, out: list[bytes], version: IdeaVersion) -> None:
        """Alternately JSON cut in half and valid JSON that is not an idea."""
        if self.malformed_sent % 2 == 0:
            data = version.text[: len(version.text) // 2]
        else:
            data = json.dumps({"notice": "not an idea", "seq": self.malformed_sent})
        self.malformed_sent += 1
        self.idea_events += 1
        self.sim.ledger.record_malformed(self.id, data, time.time())
        self._event(out, "idea", [data])

    # -- plumbing ------------------------------------------------------

    def _flush(self, out: list[bytes]) -> None:
        if out:
            payload = b"".join(out)
            out.clear()
            self._writer.write(payload)

    def _wait_and_drain(self, timeout: float) -> list[IdeaVersion]:
        try:
            first = self.subscription.queue.get(timeout=timeout)
        except Empty:
            return []
        batch = self._drain()
        return ([first] if first is not None else []) + batch

    def _drain(self) -> list[IdeaVersion]:
        batch = []
        queue = self.subscription.queue
        while True:
            try:
                item = queue.get_nowait()
            except Empty:
                return batch
            if item is not None:
                batch.append(item)

    def _stalled(self) -> bool:
        stall_after = self.config.stall_after
        return self.sim.faults.stalled or (stall_after is not None and time.monotonic() - self._started >= stall_after)

    def _hold(self) -> None:
        """Stay silent with the socket open; notice when the client leaves."""
        if not self.sim.faults.stalled:
            # --stall-after never ends: stop queueing ideas nobody will get.
            self.sim.hub.unsubscribe(self.subscription)
            self._drain()
        sock = self.handler.connection
        readable, _, _ = select.select([sock], [], [], MAX_WAIT)
        if readable and not sock.recv(4096):
            raise ConnectionResetError("client closed a stalled stream")
