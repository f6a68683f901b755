"""The gRPC servicer of trading.TradingService (contract C)."""

from __future__ import annotations

import logging
import threading

import grpc

from simulators.anthid.session import StreamSession
from tradebus.protos import pb, pb_grpc

log = logging.getLogger(__name__)
API_KEY_HEADER = "x-api-key"


class ConnectionLimiter:
    """Concurrent calls per organization (both RPCs count)."""

    def __init__(self, limit: int):
        self.limit = limit
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, org_id: str) -> bool:
        with self._lock:
            if self._counts.get(org_id, 0) >= self.limit:
                return False
            self._counts[org_id] = self._counts.get(org_id, 0) + 1
            return True

    def release(self, org_id: str) -> None:
        with self._lock:
            self._counts[org_id] = max(0, self._counts.get(org_id, 0) - 1)

    def count(self, org_id: str) -> int:
        with self._lock:
            return self._counts.get(org_id, 0)


class TradingServicer(pb_grpc.TradingServiceServicer):
    def __init__(self, directory, hub, faults, limiter: ConnectionLimiter, ledger, heartbeat_seconds: float):
        self.directory = directory
        self.hub = hub
        self.faults = faults
        self.limiter = limiter
        self.ledger = ledger
        self.heartbeat_seconds = heartbeat_seconds

    def StreamEvents(self, request_iterator, context):
        session, close = self._open(context)
        try:
            reader = threading.Thread(target=self._read_requests, args=(request_iterator, session),
                                      name=f"anthid-sim-requests-{session.id}", daemon=True)
            reader.start()
            yield from session.events(context)
        finally:
            close()

    def SubscribeEvents(self, request, context):
        session, close = self._open(context)
        try:
            if not session.subscribe(request):
                # Nothing can ever arrive on a rejected fixed subscription: say why, then end.
                yield from session.events_until_drained()
                return
            yield from session.events(context)
        finally:
            close()

    # -- helpers ----------------------------------------------------------------

    def _open(self, context):
        """Admission: outage fault, API key, connection limit. Aborts the call or
        returns (session, close) where close() is idempotent."""
        if self.faults.unavailable():
            context.abort(grpc.StatusCode.UNAVAILABLE, "service unavailable (simulated outage)")
        api_key = next((v for k, v in context.invocation_metadata() if k == API_KEY_HEADER), None)
        org = self.directory.for_key(api_key)
        if org is None:
            # Never echo the key: it is a secret even when wrong.
            context.abort(grpc.StatusCode.UNAUTHENTICATED, f"missing or invalid {API_KEY_HEADER}")
        if not self.limiter.acquire(org.id):
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          f"streaming connection limit reached ({self.limiter.limit} per organization)")
        channel = self.hub.channel(org.id)
        session = StreamSession(channel, self.faults, self.ledger, self.heartbeat_seconds)
        channel.join(session)
        closed = threading.Lock()
        done = []

        def close():
            with closed:
                if done:
                    return
                done.append(True)
            session.end()
            channel.leave(session)
            self.limiter.release(org.id)

        if not context.add_callback(close):  # the call already ended
            close()
        return session, close

    @staticmethod
    def _read_requests(request_iterator, session) -> None:
        try:
            for request in request_iterator:
                which = request.WhichOneof("msg")
                if which == "subscribe":
                    session.subscribe(request.subscribe)
                elif which == "unsubscribe":
                    session.unsubscribe(request.unsubscribe.trading_account_id)
                else:
                    session.put(pb.TradingEvent(error=pb.Error(message="request has neither subscribe nor unsubscribe")))
        except Exception:  # noqa: BLE001 - the call was cancelled or ended; nothing to read any more
            log.debug("request stream of session %s ended", session.id)
