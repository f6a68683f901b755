"""One open call (StreamEvents or SubscribeEvents): its scopes and its outbox.

The owning OrgChannel puts events into the outbox under its lock; the gRPC
handler thread drains it through `events()`, adding heartbeats and applying
the stream-level faults.
"""

from __future__ import annotations

import itertools
import math
import queue
import threading
import time

import grpc

from simulators.anthid.events import Emission
from simulators.anthid.faults import FaultSwitches
from simulators.anthid.subscriptions import Scope, scope_from_subscribe
from tradebus.protos import pb

_WAKE = object()
_ids = itertools.count(1)


class Replay:
    """A retained event replayed to one stream."""

    __slots__ = ("emission",)

    def __init__(self, emission):
        self.emission = emission


def status_event(message: str):
    return pb.TradingEvent(status=pb.Status(message=message))


def error_event(message: str):
    return pb.TradingEvent(error=pb.Error(message=message))


def primed_event(kind: int):
    return pb.TradingEvent(primed=pb.Primed(event_type=kind))


def heartbeat_event():
    event = pb.TradingEvent(heartbeat=pb.Heartbeat())
    event.heartbeat.sent_at.FromNanoseconds(time.time_ns())
    return event


class StreamSession:
    def __init__(self, channel, faults: FaultSwitches, ledger, heartbeat_seconds: float,
                 outbox_limit: int = 100_000):
        self.id = next(_ids)
        self.channel = channel
        self.org = channel.org
        self.faults = faults
        self.ledger = ledger
        self.heartbeat_seconds = heartbeat_seconds
        self.outbox_limit = outbox_limit
        self.scopes: dict[str, Scope] = {}  # by account id ("" = org-wide); guarded by channel.lock
        self.data_sent = 0
        self._outbox: queue.Queue = queue.Queue()
        self._end: tuple[grpc.StatusCode | None, str] | None = None
        self._ended = threading.Event()

    # -- called by the channel (under its lock) ------------------------------

    def offer(self, emission) -> int:
        """Queue a live event once per matching scope (org-wide and account
        scopes may both match: the contract allows the duplicate)."""
        hits = sum(1 for scope in self.scopes.values() if scope.matches(emission.event))
        for _ in range(hits):
            self.put(emission)
        return hits

    def put(self, item) -> None:
        if self._outbox.qsize() >= self.outbox_limit:
            self.end(grpc.StatusCode.RESOURCE_EXHAUSTED, "client too slow: outbox full")
            return
        self._outbox.put(item)

    # -- requests ---------------------------------------------------------------

    def subscribe(self, subscribe) -> bool:
        scope = scope_from_subscribe(subscribe, self.org)
        if isinstance(scope, str):
            self.put(error_event(scope))
            return False
        self.channel.attach(self, scope)
        return True

    def unsubscribe(self, account_id: str) -> None:
        self.channel.detach(self, account_id)

    def end(self, code: grpc.StatusCode | None = None, details: str = "") -> None:
        """End the stream: OK when `code` is None, else with that status."""
        if self._end is None:
            self._end = (code, details)
        self._ended.set()
        self._outbox.put(_WAKE)

    @property
    def ended(self) -> bool:
        return self._end is not None

    # -- the response stream -----------------------------------------------------

    def events_until_drained(self):
        """Only the control events queued so far (used to answer a rejected
        SubscribeEvents with its error before ending the call)."""
        while True:
            try:
                item = self._outbox.get_nowait()
            except queue.Empty:
                return
            if item is not _WAKE and not isinstance(item, (Replay, Emission)):
                yield item

    def events(self, context):
        """TradingEvents for the gRPC handler to yield, until the stream ends."""
        interval = self.heartbeat_seconds
        next_heartbeat = time.monotonic() + interval if interval > 0 else math.inf
        limit = self.faults.end_stream_after
        while self._end is None and not (limit and self.data_sent >= limit):
            if self.faults.stalled():
                self._ended.wait(0.05)
                next_heartbeat = time.monotonic() + interval if interval > 0 else math.inf
                continue
            now = time.monotonic()
            if now >= next_heartbeat:
                next_heartbeat = now + interval
                yield heartbeat_event()
                continue
            try:
                item = self._outbox.get(timeout=min(next_heartbeat - now, 0.25))
            except queue.Empty:
                continue
            if item is _WAKE:
                continue
            if isinstance(item, Replay):
                self.ledger.record(item.emission, stream_id=self.id, replay=True)
                self.data_sent += 1
                yield item.emission.event
            elif isinstance(item, Emission):
                self.ledger.record(item, stream_id=self.id)
                self.data_sent += 1
                yield item.event
            else:  # status / error / primed
                yield item
        code, details = self._end or (None, "")
        if code is not None and context.is_active():
            context.abort(code, details)
