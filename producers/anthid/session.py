"""One StreamEvents call (spec §4.5): commands go in through a request queue
(Subscribe per account scope or org-wide, Unsubscribe), events come out as
raw bytes plus the decoded TradingEvent.

A watchdog cancels the call when heartbeats stop arriving for longer than
the timeout. Time the reader spends blocked downstream (Kafka backpressure)
does not count against the server: a full producer queue must not turn into
reconnects, which would lose the trades that have no replay.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Iterable, Iterator

import grpc

from producers.anthid.channel import STREAM_EVENTS
from producers.anthid.convert import decode_event
from producers.anthid.values import ConversionError
from tradebus.protos import pb

_END = object()
# A reader that takes longer than this over one event is blocked downstream.
SLOW_HANDLING_S = 0.25


class StreamSession:
    def __init__(self, channel: grpc.Channel, metadata: Iterable[tuple[str, str]], *, heartbeat_timeout_s: float,
                 clock=time.monotonic):
        self._channel = channel
        self._metadata = tuple(metadata)
        self._timeout = heartbeat_timeout_s
        self._clock = clock
        self._requests: queue.Queue = queue.Queue()
        self._call = None
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._deadline = 0.0
        self._handling_since: float | None = None
        self.cancel_reason: str | None = None  # "heartbeat_stall" or "closed" when we ended the call
        self.last_heartbeat_at: float | None = None

    # -- commands -------------------------------------------------------------
    def subscribe(self, account_id: str, event_types: Iterable[int], order_delivery: int,
                  instrument_key: str = "", instrument_class: str = "") -> None:
        self._requests.put(pb.StreamEventsRequest(subscribe=pb.Subscribe(
            trading_account_id=account_id, subscriptions=list(event_types), order_delivery=order_delivery,
            instrument_key=instrument_key, instrument_class=instrument_class,
        )))

    def unsubscribe(self, account_id: str) -> None:
        """Removes a whole scope; '' removes only the org-wide one (spec §4.5)."""
        self._requests.put(pb.StreamEventsRequest(unsubscribe=pb.Unsubscribe(trading_account_id=account_id)))

    # -- the call ---------------------------------------------------------------
    def open(self) -> "StreamSession":
        method = self._channel.stream_stream(
            STREAM_EVENTS, request_serializer=pb.StreamEventsRequest.SerializeToString,
            response_deserializer=None,  # raw bytes: records keep the upstream bytes exactly
        )
        self._deadline = self._clock() + self._timeout
        with self._lock:
            if self._closed.is_set():
                return self  # stopped while connecting: nothing to open
            self._call = method(self._request_iterator(), metadata=self._metadata, wait_for_ready=False)
        threading.Thread(target=self._watch, name="anthid-heartbeat-watchdog", daemon=True).start()
        return self

    def __iter__(self) -> Iterator[tuple[bytes, object | None]]:
        """(raw bytes, TradingEvent or None when undecodable). Raises
        grpc.RpcError when the call fails, or is cancelled by close() or the
        watchdog (see ``cancel_reason``)."""
        if self._call is None:
            return
        for raw in self._call:
            try:
                event = decode_event(raw)
            except ConversionError:
                event = None
            if event is not None and event.WhichOneof("event") == "heartbeat":
                self.last_heartbeat_at = self._clock()
                self._deadline = self.last_heartbeat_at + self._timeout
            started = self._clock()
            self._handling_since = started
            yield raw, event
            self._handling_since = None
            elapsed = self._clock() - started
            if elapsed > SLOW_HANDLING_S:
                self._deadline += elapsed

    def _request_iterator(self):
        while True:
            item = self._requests.get()
            if item is _END:
                return
            yield item

    def _watch(self) -> None:
        interval = min(1.0, self._timeout / 4)
        while not self._closed.wait(interval):
            since = self._handling_since
            if since is not None and self._clock() - since > SLOW_HANDLING_S:
                continue  # blocked downstream, not the server's fault
            if self._clock() > self._deadline:
                self._cancel("heartbeat_stall")
                return

    def _cancel(self, reason: str) -> None:
        with self._lock:
            if self.cancel_reason is None:
                self.cancel_reason = reason
            call = self._call
        if call is not None:
            call.cancel()

    @property
    def stalled(self) -> bool:
        return self.cancel_reason == "heartbeat_stall"

    def close(self) -> None:
        """Ends the call (idempotent): cancels it and ends the request stream."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._cancel("closed")
        self._requests.put(_END)
