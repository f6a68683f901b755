"""Fan-out: each organization's events are published once and offered to
every open stream of that organization; retained state is kept alongside so
that replay-on-attach and live delivery never overlap or leave a gap."""

from __future__ import annotations

import threading
import time

from simulators.anthid.events import Emission, stamp
from simulators.anthid.orgs import Organization
from simulators.anthid.session import Replay, primed_event, status_event
from simulators.anthid.state import RetainedState
from tradebus.protos import pb

STATUS_SUBSCRIBED = "subscribed"
STATUS_UNSUBSCRIBED = "unsubscribed"
PURGE_EVERY_SECONDS = 1.0


class OrgChannel:
    def __init__(self, org: Organization, retention_seconds: float):
        self.org = org
        self.lock = threading.RLock()
        self.sessions: set = set()
        self.state = RetainedState(retention_seconds)
        self.published = 0
        self._next_purge = time.monotonic() + PURGE_EVERY_SECONDS

    def join(self, session) -> None:
        with self.lock:
            self.sessions.add(session)

    def leave(self, session) -> None:
        with self.lock:
            self.sessions.discard(session)

    def has_listeners(self) -> bool:
        with self.lock:
            return any(session.scopes for session in self.sessions)

    def publish(self, generated) -> Emission:
        """Stamp, retain and fan out one generated event."""
        with self.lock:
            stamp(generated.event, time.time_ns())
            emission = Emission(self.org.id, generated.event, generated.fault)
            if generated.fault is None:  # malformed events are not state
                self.state.apply(emission)
            for session in self.sessions:
                session.offer(emission)
            self.published += 1
            if time.monotonic() >= self._next_purge:
                self.state.purge()
                self._next_purge = time.monotonic() + PURGE_EVERY_SECONDS
            return emission

    def attach(self, session, scope) -> None:
        """(Re)place the scope, confirm, then replay retained state (§4.5)."""
        with self.lock:
            session.scopes[scope.account_id] = scope
            session.put(status_event(STATUS_SUBSCRIBED))
            if pb.EVENT_TYPE_BROKER_POSITION in scope.kinds:
                self._replay(session, scope, self.state.positions())
                session.put(primed_event(pb.EVENT_TYPE_BROKER_POSITION))
            if pb.EVENT_TYPE_BROKER_ORDER in scope.kinds and scope.primed_orders:
                self._replay(session, scope, self.state.orders())
                session.put(primed_event(pb.EVENT_TYPE_BROKER_ORDER))

    def detach(self, session, account_id: str) -> None:
        """Remove a whole scope; an empty id removes only the org-wide one."""
        with self.lock:
            session.scopes.pop(account_id, None)
            session.put(status_event(STATUS_UNSUBSCRIBED))

    @staticmethod
    def _replay(session, scope, emissions) -> None:
        for emission in emissions:
            if scope.matches(emission.event):
                session.put(Replay(emission))


class EventHub:
    def __init__(self, organizations: list[Organization], retention_seconds: float):
        self.channels = {org.id: OrgChannel(org, retention_seconds) for org in organizations}

    def channel(self, org_id: str) -> OrgChannel:
        return self.channels[org_id]

    def sessions(self) -> list:
        result = []
        for channel in self.channels.values():
            with channel.lock:
                result.extend(channel.sessions)
        return result
