"""Subscription scopes and Unsubscribe (spec §4.5) through the producer's
StreamSession against the simulator (no Kafka needed): per-account and
org-wide scopes, their coexistence (duplicates allowed), Unsubscribe of a
whole scope, '' removing only the org-wide scope, errors for invalid
subscriptions, and the heartbeat watchdog."""

from __future__ import annotations

import queue
import threading
import time

import grpc
import pytest

from producers.anthid.channel import open_channel
from producers.anthid.session import StreamSession
from tests.integration.producers.anthid.conftest import producer_settings
from tradebus.protos import pb

ALL_KINDS = [pb.EVENT_TYPE_BROKER_ORDER, pb.EVENT_TYPE_BROKER_POSITION, pb.EVENT_TYPE_BROKER_TRADE,
             pb.EVENT_TYPE_INTENT_ACTION]


class Reader:
    """Reads a session on a thread into a queue of (monotonic time, event)."""

    def __init__(self, session: StreamSession):
        self.session = session
        self.events: queue.Queue = queue.Queue()
        self.error: grpc.RpcError | None = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for _raw, event in self.session:
                self.events.put((time.monotonic(), event))
        except grpc.RpcError as exc:
            self.error = exc

    def until(self, predicate, timeout=10.0) -> list:
        """Events read until one matches ``predicate`` (included)."""
        seen, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                _, event = self.events.get(timeout=0.1)
            except queue.Empty:
                continue
            seen.append(event)
            if predicate(event):
                return seen
        raise AssertionError(f"no matching event in {timeout}s; saw {[e.WhichOneof('event') for e in seen][-20:]}")

    def for_seconds(self, seconds: float) -> list:
        seen, deadline = [], time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                seen.append(self.events.get(timeout=0.05)[1])
            except queue.Empty:
                pass
        return seen


def is_status(text):
    return lambda e: e.WhichOneof("event") == "status" and e.status.message == text


def data_accounts(events) -> list[str]:
    accounts = []
    for event in events:
        which = event.WhichOneof("event")
        if which in ("broker_order", "broker_position", "broker_trade", "intent_action"):
            accounts.append(getattr(event, which).account_id)
    return accounts


@pytest.fixture
def session_for(start_sim):
    sessions = []

    def open_session(sim, heartbeat_timeout_s=30.0, api_key=None) -> tuple[StreamSession, Reader]:
        settings = producer_settings(sim.target)
        channel = open_channel(settings)
        metadata = (("x-api-key", api_key or settings.api_key),)
        session = StreamSession(channel, metadata, heartbeat_timeout_s=heartbeat_timeout_s).open()
        sessions.append((session, channel))
        return session, Reader(session)

    yield open_session
    for session, channel in sessions:
        session.close()
        channel.close()


def test_account_scope_org_scope_and_unsubscribe(start_sim, session_for):
    sim = start_sim(rate=80.0, prefill_events=20)
    org = sim.organizations[0]
    account_a, account_b = org.account_ids[:2]
    session, reader = session_for(sim)

    session.subscribe(account_a, ALL_KINDS, pb.ORDER_DELIVERY_LIVE)
    attach = reader.until(lambda e: e.WhichOneof("event") == "primed")
    assert is_status("subscribed")(attach[0])
    assert attach[-1].primed.event_type == pb.EVENT_TYPE_BROKER_POSITION  # LIVE: positions replayed, orders not
    assert set(data_accounts(attach)) <= {account_a}
    live = reader.for_seconds(1.5)
    assert data_accounts(live) and set(data_accounts(live)) == {account_a}
    assert not [e for e in live if e.WhichOneof("event") == "primed"]

    # org-wide scope added on the same call: primed replay of both kinds (ORDER_DELIVERY_PRIMED)
    session.subscribe("", ALL_KINDS, pb.ORDER_DELIVERY_PRIMED)
    reader.until(is_status("subscribed"))
    primed = [e.primed.event_type for e in reader.until(
        lambda e: e.WhichOneof("event") == "primed" and e.primed.event_type == pb.EVENT_TYPE_BROKER_ORDER)
        if e.WhichOneof("event") == "primed"]
    assert pb.EVENT_TYPE_BROKER_POSITION in primed
    both = reader.for_seconds(2.0)
    accounts = data_accounts(both)
    assert account_b in accounts  # the org-wide scope sees every account
    payloads = [e.SerializeToString() for e in both if e.WhichOneof("event") not in ("heartbeat", "status", "primed")]
    assert len(payloads) > len(set(payloads)), "account A's events arrive once per matching scope"

    # '' removes only the org-wide scope: account A alone again, no duplicates
    session.unsubscribe("")
    reader.until(is_status("unsubscribed"))
    reader.for_seconds(0.3)  # events queued before the unsubscribe
    after = reader.for_seconds(1.5)
    assert data_accounts(after) and set(data_accounts(after)) == {account_a}
    payloads = [e.SerializeToString() for e in after if e.WhichOneof("event") not in ("heartbeat",)]
    assert len(payloads) == len(set(payloads))

    # removing the account scope leaves a quiet but living stream
    session.unsubscribe(account_a)
    reader.until(is_status("unsubscribed"))
    reader.for_seconds(0.3)
    quiet = reader.for_seconds(1.0)
    assert data_accounts(quiet) == []
    assert any(e.WhichOneof("event") == "heartbeat" for e in quiet)


def test_resubscribe_replaces_the_scope(start_sim, session_for):
    sim = start_sim(rate=80.0)
    account = sim.organizations[0].account_ids[0]
    session, reader = session_for(sim)
    session.subscribe(account, [pb.EVENT_TYPE_BROKER_TRADE], pb.ORDER_DELIVERY_LIVE)
    reader.until(is_status("subscribed"))
    session.subscribe(account, [pb.EVENT_TYPE_INTENT_ACTION], pb.ORDER_DELIVERY_LIVE)  # same scope: replaces kinds
    reader.until(is_status("subscribed"))
    reader.for_seconds(0.3)
    kinds = {e.WhichOneof("event") for e in reader.for_seconds(2.0)} - {"heartbeat"}
    assert kinds == {"intent_action"}


def test_invalid_subscriptions_answer_error_events(start_sim, session_for):
    sim = start_sim(rate=10.0)
    session, reader = session_for(sim)
    session.subscribe("", [], pb.ORDER_DELIVERY_LIVE)  # no event kinds
    assert "no recognised event kinds" in reader.until(lambda e: e.WhichOneof("event") == "error")[-1].error.message
    session.subscribe("00000000-0000-0000-0000-000000000000", ALL_KINDS, pb.ORDER_DELIVERY_LIVE)
    assert reader.until(lambda e: e.WhichOneof("event") == "error")[-1].error.message
    assert reader.error is None  # application errors do not end the call


def test_wrong_key_is_unauthenticated_without_echoing_it(start_sim, session_for):
    sim = start_sim(rate=0)
    _session, reader = session_for(sim, api_key="wrong-key-0123456789")
    reader.thread.join(10)
    assert reader.error is not None and reader.error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "wrong-key-0123456789" not in (reader.error.details() or "")


def test_watchdog_cancels_a_call_whose_heartbeats_stop(start_sim, session_for):
    sim = start_sim(rate=10.0, heartbeat_seconds=0.1)
    session, reader = session_for(sim, heartbeat_timeout_s=1.0)
    session.subscribe("", [pb.EVENT_TYPE_BROKER_TRADE], pb.ORDER_DELIVERY_LIVE)
    reader.until(lambda e: e.WhichOneof("event") == "heartbeat")
    sim.set_stall(True)
    started = time.monotonic()
    reader.thread.join(10)
    assert session.stalled and reader.error is not None and reader.error.code() == grpc.StatusCode.CANCELLED
    assert 0.8 < time.monotonic() - started < 4


def test_watchdog_does_not_count_time_blocked_downstream(start_sim, session_for):
    # The reader takes 2.5 s over one event (a full Kafka queue): not a stall.
    sim = start_sim(rate=5.0, heartbeat_seconds=0.1)
    settings = producer_settings(sim.target)
    channel = open_channel(settings)
    session = StreamSession(channel, (("x-api-key", settings.api_key),), heartbeat_timeout_s=1.0).open()
    try:
        session.subscribe("", [pb.EVENT_TYPE_BROKER_TRADE], pb.ORDER_DELIVERY_LIVE)
        count = 0
        for _raw, event in session:
            count += 1
            if count == 3:
                time.sleep(2.5)
            if count == 40:
                break
        assert not session.stalled
    finally:
        session.close()
        channel.close()
