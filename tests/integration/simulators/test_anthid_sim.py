"""The Anthid simulator over real gRPC, in-process on a free port (no Kafka needed)."""

from __future__ import annotations

import base64
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from simulators.anthid.ledger import read_ledger
from simulators.anthid.orgs import OrgDirectory
from simulators.anthid.server import AnthidSimulator, SimConfig
from tradebus.protos import pb, pb_grpc

REPO = Path(__file__).resolve().parents[3]
KEY, OTHER_KEY = "it-key-acme", "it-key-beta"
ALL_KINDS = [pb.EVENT_TYPE_BROKER_ORDER, pb.EVENT_TYPE_BROKER_POSITION, pb.EVENT_TYPE_BROKER_TRADE,
             pb.EVENT_TYPE_INTENT_ACTION]
DATA = {"broker_order", "broker_position", "broker_trade", "intent_action"}
_END = object()


def kind(event) -> str:
    return event.WhichOneof("event")


def payload(event):
    return getattr(event, kind(event))


class Client:
    """A real gRPC client; responses are read on a thread into a queue."""

    def __init__(self, target: str, key: str | None = KEY, fixed: pb.Subscribe | None = None):
        self.channel = grpc.insecure_channel(target)
        stub = pb_grpc.TradingServiceStub(self.channel)
        metadata = [("x-api-key", key)] if key else []
        self._requests: queue.Queue = queue.Queue()
        self._events: queue.Queue = queue.Queue()
        self.error: grpc.RpcError | None = None
        self.ended = threading.Event()
        if fixed is None:
            self.call = stub.StreamEvents(self._request_iter(), metadata=metadata)
        else:
            self.call = stub.SubscribeEvents(fixed, metadata=metadata)
        threading.Thread(target=self._read, daemon=True).start()

    def _request_iter(self):
        while True:
            item = self._requests.get()
            if item is _END:
                return
            yield item

    def _read(self):
        try:
            for event in self.call:
                self._events.put(event)
        except grpc.RpcError as exc:
            self.error = exc
        finally:
            self.ended.set()
            self._events.put(_END)

    def subscribe(self, account: str = "", kinds=ALL_KINDS, delivery=pb.ORDER_DELIVERY_LIVE, **extra):
        self._requests.put(pb.StreamEventsRequest(subscribe=pb.Subscribe(
            trading_account_id=account, subscriptions=kinds, order_delivery=delivery, **extra)))

    def unsubscribe(self, account: str = ""):
        self._requests.put(pb.StreamEventsRequest(unsubscribe=pb.Unsubscribe(trading_account_id=account)))

    def next(self, timeout: float = 3.0):
        """Next event, or None when the call ended; fails on timeout."""
        try:
            item = self._events.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no event within {timeout}s")
        return None if item is _END else item

    def until(self, predicate, timeout: float = 3.0, skip_heartbeats: bool = True) -> list:
        """Events up to and including the first that satisfies `predicate`."""
        seen, deadline = [], time.monotonic() + timeout
        while True:
            event = self.next(max(0.01, deadline - time.monotonic()))
            if event is None:
                pytest.fail(f"call ended ({self.code()}) before the expected event; saw {[kind(e) for e in seen]}")
            if skip_heartbeats and kind(event) == "heartbeat":
                continue
            seen.append(event)
            if predicate(event):
                return seen

    def collect(self, seconds: float) -> list:
        events, deadline = [], time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self._events.get(timeout=left)
            except queue.Empty:
                break
            if item is _END:
                break
            events.append(item)
        return events

    def code(self):
        return self.error.code() if self.error is not None else (grpc.StatusCode.OK if self.ended.is_set() else None)

    def wait_end(self, timeout: float = 3.0):
        assert self.ended.wait(timeout), "call did not end"
        return self.code()

    def close(self):
        self._requests.put(_END)
        self.call.cancel()
        self.channel.close()


def ns(rfc3339: str) -> int:
    stamp = Timestamp()
    stamp.FromJsonString(rfc3339)
    return stamp.ToNanoseconds()


def is_status(text):
    return lambda e: kind(e) == "status" and e.status.message == text


def is_primed(event_type):
    return lambda e: kind(e) == "primed" and e.primed.event_type == event_type


@pytest.fixture
def make_sim(tmp_path):
    sims, clients = [], []

    def start(**overrides) -> AnthidSimulator:
        config = dict(directory=OrgDirectory.from_key_specs([f"{KEY}:acme", f"{OTHER_KEY}:beta"]),
                      port=0, rate=200.0, seed=3, heartbeat_seconds=0.25, stop_grace_seconds=0.2)
        config.update(overrides)
        sim = AnthidSimulator(SimConfig(**config)).start()
        sims.append(sim)
        return sim

    def client(sim, *args, **kwargs) -> Client:
        c = Client(sim.target, *args, **kwargs)
        clients.append(c)
        return c

    start.client = client
    yield start
    for c in clients:
        c.close()
    for sim in sims:
        sim.stop(grace=0.2)


def acme(sim):
    return next(o for o in sim.organizations if o.name == "acme")


def test_wrong_or_missing_api_key_is_unauthenticated(make_sim):
    sim = make_sim()
    wrong = make_sim.client(sim, key="not-a-key")
    assert wrong.wait_end() == grpc.StatusCode.UNAUTHENTICATED
    assert "not-a-key" not in wrong.error.details()
    missing = make_sim.client(sim, key=None, fixed=pb.Subscribe(subscriptions=ALL_KINDS))
    assert missing.wait_end() == grpc.StatusCode.UNAUTHENTICATED


def test_connection_limit_per_organization(make_sim):
    sim = make_sim(connection_limit=2)
    first, second = make_sim.client(sim), make_sim.client(sim)
    for c in (first, second):
        c.subscribe(kinds=[pb.EVENT_TYPE_INTENT_ACTION])
        c.until(is_status("subscribed"))
    third = make_sim.client(sim)
    assert third.wait_end() == grpc.StatusCode.RESOURCE_EXHAUSTED
    other_org = make_sim.client(sim, key=OTHER_KEY)  # the limit is per organization
    other_org.subscribe(kinds=[pb.EVENT_TYPE_INTENT_ACTION])
    other_org.until(is_status("subscribed"))
    first.close()
    deadline = time.monotonic() + 3
    while sim.connections(acme(sim).id) > 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sim.connections(acme(sim).id) == 1
    fourth = make_sim.client(sim)
    fourth.subscribe(kinds=[pb.EVENT_TYPE_INTENT_ACTION])
    fourth.until(is_status("subscribed"))


def test_subscribe_primes_then_streams_and_replays_on_attach(make_sim):
    sim = make_sim()
    live = make_sim.client(sim)
    live.subscribe(delivery=pb.ORDER_DELIVERY_PRIMED)
    first = live.until(is_primed(pb.EVENT_TYPE_BROKER_ORDER))
    # nothing retained yet: status, then both primed markers with no replay between
    assert [kind(e) for e in first] == ["status", "primed", "primed"]
    assert first[0].status.message == "subscribed"
    assert first[1].primed.event_type == pb.EVENT_TYPE_BROKER_POSITION
    seen = live.until(lambda e: kind(e) == "broker_position", timeout=5)
    seen += live.collect(0.3)
    assert DATA <= {kind(e) for e in seen}
    live.unsubscribe()
    seen += live.until(is_status("unsubscribed"))
    last_position, last_order = {}, {}
    for e in seen:
        if kind(e) == "broker_position":
            last_position[(e.broker_position.account_id, e.broker_position.symbol)] = e.broker_position
        elif kind(e) == "broker_order":
            last_order[e.broker_order.order_id] = e.broker_order

    late = make_sim.client(sim)
    late.subscribe(delivery=pb.ORDER_DELIVERY_PRIMED)
    attach = [e for e in late.until(is_primed(pb.EVENT_TYPE_BROKER_ORDER)) if kind(e) != "heartbeat"]
    kinds = [kind(e) for e in attach]
    cut = kinds.index("primed")
    assert kinds[0] == "status" and set(kinds[1:cut]) == {"broker_position"}
    assert attach[cut].primed.event_type == pb.EVENT_TYPE_BROKER_POSITION
    assert set(kinds[cut + 1:-1]) == {"broker_order"}, "orders replayed only between the two primed markers"
    replayed_positions = {(p.account_id, p.symbol): p for p in map(payload, attach[1:cut])}
    replayed_orders = {o.order_id: o for o in map(payload, attach[cut + 1:-1])}
    assert len(replayed_positions) == cut - 1, "one message per retained position"
    for key, position in last_position.items():  # retention is an hour: everything seen is retained
        assert replayed_positions[key].received_at.ToNanoseconds() >= position.received_at.ToNanoseconds()
    for order_id, order in last_order.items():
        assert replayed_orders[order_id].received_at.ToNanoseconds() >= order.received_at.ToNanoseconds()


def test_positions_primed_only_for_subscribed_kinds(make_sim):
    sim = make_sim()
    trades_only = make_sim.client(sim)
    trades_only.subscribe(kinds=[pb.EVENT_TYPE_BROKER_TRADE, pb.EVENT_TYPE_BROKER_ORDER],
                          delivery=pb.ORDER_DELIVERY_LIVE)
    trades_only.until(is_status("subscribed"))
    events = trades_only.until(lambda e: kind(e) == "broker_trade", timeout=5)
    assert "primed" not in {kind(e) for e in events}, "no positions subscribed, orders LIVE: no primed"


def test_account_scope_unsubscribe_and_replacement(make_sim):
    sim = make_sim()
    org = acme(sim)
    account = org.account_ids[0]
    client = make_sim.client(sim)
    client.subscribe(account=account, kinds=[pb.EVENT_TYPE_INTENT_ACTION, pb.EVENT_TYPE_BROKER_TRADE])
    client.until(is_status("subscribed"))
    events = client.until(lambda e: kind(e) == "intent_action", timeout=5) + client.collect(0.4)
    data = [e for e in events if kind(e) in DATA]
    assert data and {payload(e).account_id for e in data} == {account}
    assert {kind(e) for e in data} <= {"intent_action", "broker_trade"}

    # same scope again with other kinds: replaces the scope (and re-attaches: primed positions)
    client.subscribe(account=account, kinds=[pb.EVENT_TYPE_BROKER_POSITION])
    client.until(is_status("subscribed"))
    after = client.until(is_primed(pb.EVENT_TYPE_BROKER_POSITION)) + client.collect(0.4)
    assert {kind(e) for e in after if kind(e) in DATA} <= {"broker_position"}

    client.unsubscribe(account)
    client.until(is_status("unsubscribed"))
    quiet = client.collect(0.5)
    assert [kind(e) for e in quiet if kind(e) != "heartbeat"] == [], "nothing after unsubscribed for that scope"


def test_org_wide_and_account_scope_may_both_deliver(make_sim):
    sim = make_sim()
    account = acme(sim).account_ids[0]
    client = make_sim.client(sim)
    client.subscribe(kinds=[pb.EVENT_TYPE_INTENT_ACTION])
    client.subscribe(account=account, kinds=[pb.EVENT_TYPE_INTENT_ACTION])
    client.until(is_status("subscribed"))
    client.until(is_status("subscribed"))
    intents = [e for e in client.collect(1.0) if kind(e) == "intent_action"]
    keys = [(e.intent_action.intent_id, e.intent_action.seq) for e in intents
            if e.intent_action.account_id == account]
    assert keys and all(keys.count(k) == 2 for k in keys)


def test_invalid_subscriptions_get_error_events(make_sim):
    sim = make_sim()
    client = make_sim.client(sim)
    client.subscribe(kinds=[])
    assert "no recognised event kinds" in client.until(lambda e: kind(e) == "error")[-1].error.message
    client.subscribe(kinds=[pb.EVENT_TYPE_UNSPECIFIED])
    client.until(lambda e: kind(e) == "error")
    client.subscribe(account="00000000-0000-4000-8000-000000000000", kinds=ALL_KINDS)
    assert "account" in client.until(lambda e: kind(e) == "error")[-1].error.message
    client.subscribe(account=sim.organizations[1].account_ids[0], kinds=ALL_KINDS)  # another org's account
    client.until(lambda e: kind(e) == "error")
    client.until(lambda e: kind(e) == "heartbeat", skip_heartbeats=False)  # the stream stays open
    fixed = make_sim.client(sim, fixed=pb.Subscribe(subscriptions=[]))
    assert kind(fixed.next()) == "error"
    assert fixed.wait_end() == grpc.StatusCode.OK


def test_subscribe_events_server_streaming(make_sim):
    sim = make_sim()
    client = make_sim.client(sim, fixed=pb.Subscribe(subscriptions=ALL_KINDS, order_delivery=pb.ORDER_DELIVERY_PRIMED))
    head = client.until(is_primed(pb.EVENT_TYPE_BROKER_ORDER))
    assert head[0].status.message == "subscribed"
    client.until(lambda e: kind(e) == "broker_trade", timeout=5)


def test_heartbeats_at_the_configured_interval(make_sim):
    sim = make_sim(heartbeat_seconds=0.15)
    client = make_sim.client(sim)  # no subscription needed for heartbeats
    beats = [e for e in client.collect(0.8) if kind(e) == "heartbeat"]
    assert 3 <= len(beats) <= 7
    stamps = [b.heartbeat.sent_at.ToNanoseconds() for b in beats]
    assert stamps == sorted(stamps) and abs(time.time_ns() - stamps[-1]) < 2e9


def test_end_stream_after_n_data_events(make_sim):
    sim = make_sim(end_stream_after=5)
    client = make_sim.client(sim)
    client.subscribe()
    events = client.collect(3.0)
    assert client.wait_end() == grpc.StatusCode.OK
    assert len([e for e in events if kind(e) in DATA]) == 5


def test_runtime_faults_end_stall_unavailable(make_sim):
    sim = make_sim(heartbeat_seconds=0.1)
    first, second = make_sim.client(sim), make_sim.client(sim)
    first.next()
    second.next()
    assert sim.end_all_streams() == 2
    assert first.wait_end() == grpc.StatusCode.OK
    assert second.wait_end() == grpc.StatusCode.OK

    victim = make_sim.client(sim)
    victim.next()
    sim.end_all_streams(grpc.StatusCode.UNAVAILABLE)
    assert victim.wait_end() == grpc.StatusCode.UNAVAILABLE

    stalled = make_sim.client(sim)
    stalled.subscribe()
    stalled.until(is_status("subscribed"))
    sim.set_stall(True)
    stalled.collect(0.3)  # drain what was already on its way
    assert stalled.collect(0.6) == [] and not stalled.ended.is_set(), "stalled: silent but open"
    sim.set_stall(False)
    assert stalled.until(lambda e: kind(e) == "heartbeat", skip_heartbeats=False)

    sim.set_unavailable(5)
    refused = make_sim.client(sim)
    assert refused.wait_end() == grpc.StatusCode.UNAVAILABLE
    assert not stalled.ended.is_set(), "open streams are not affected"
    sim.set_unavailable(0)
    again = make_sim.client(sim)
    again.subscribe(kinds=[pb.EVENT_TYPE_INTENT_ACTION])
    again.until(is_status("subscribed"))


def test_unavailable_for_from_start(make_sim):
    sim = make_sim(unavailable_for=0.6)
    assert make_sim.client(sim).wait_end() == grpc.StatusCode.UNAVAILABLE
    time.sleep(0.7)
    client = make_sim.client(sim)
    client.subscribe(kinds=[pb.EVENT_TYPE_INTENT_ACTION])
    client.until(is_status("subscribed"))


def test_ledger_records_what_streams_got(make_sim, tmp_path):
    ledger_path = tmp_path / "anthid.ledger.jsonl"
    sim = make_sim(ledger_path=str(ledger_path), unconvertible_every=10)
    client = make_sim.client(sim)
    client.subscribe(delivery=pb.ORDER_DELIVERY_PRIMED)
    client.until(is_status("subscribed"))
    received = [e for e in client.collect(1.0) if kind(e) in DATA]
    second = make_sim.client(sim)  # attaches after events exist: replays are recorded too
    second.subscribe(delivery=pb.ORDER_DELIVERY_PRIMED)
    second.until(is_primed(pb.EVENT_TYPE_BROKER_ORDER))
    client.close()
    second.close()
    sim.stop(grace=0.2)

    lines = read_ledger(ledger_path)
    live = [line for line in lines if not line["replay"]]
    replays = [line for line in lines if line["replay"]]
    assert replays and all(line["kind"] in ("broker_position", "broker_order") for line in replays)
    by_payload = {line["payload_b64"]: line for line in live}
    assert len(by_payload) == len(live), "each generated event is recorded once"
    for event in received:
        line = by_payload[base64.b64encode(event.SerializeToString()).decode()]
        assert line["kind"] == kind(event)
        assert line["received_at"] == payload(event).received_at.ToJsonString()
        assert ns(line["emitted_at"]) >= ns(line["received_at"])
    orders = [line for line in live if line["kind"] == "broker_order" and not line["fault"]]
    assert orders and all(line["order_id"] and line["command_seq"] >= 1 and line["status"] for line in orders)
    assert all(line["exec_id"] for line in live if line["kind"] == "broker_trade")
    assert all(line["symbol"] for line in live if line["kind"] == "broker_position")
    faults = [line for line in live if line["fault"]]
    assert faults and {line["fault"] for line in faults} <= {"invalid_decimal", "missing_instrument"}
    bad = [e for e in received if kind(e) == "broker_order" and
           (e.broker_order.quantity == "12..5" or not e.broker_order.HasField("instrument"))]
    assert bad, "the client received the unconvertible orders"


def test_cli_subprocess_serves_and_stops_on_sigterm(tmp_path):
    env = dict(os.environ, TRADEBUS_LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tradebus.cli", "sim", "anthid", "--port", "0", "--api-key", f"{KEY}:acme",
         "--heartbeat-seconds", "0.2", "--ledger", str(tmp_path / "cli.ledger.jsonl")],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = proc.stdout.readline()
        assert ready.startswith("anthid-sim listening on "), ready + proc.stderr.read()
        target = ready.split()[3]
        client = Client(target)
        client.subscribe(kinds=[pb.EVENT_TYPE_INTENT_ACTION])
        client.until(is_status("subscribed"))
        client.until(lambda e: kind(e) == "intent_action", timeout=5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert client.wait_end(5) in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.OK)
        client.close()
        assert KEY not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
