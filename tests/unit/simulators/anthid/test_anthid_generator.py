"""The Anthid simulator's order-lifecycle generator."""

from __future__ import annotations

import re
from collections import defaultdict
from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from simulators.anthid.generator import (
    FAULT_INVALID_DECIMAL,
    FAULT_MISSING_INSTRUMENT,
    INVALID_DECIMAL,
    OrgEventGenerator,
    order_state_for,
)
from simulators.anthid.orgs import OrgDirectory
from tradebus.protos import pb

N_EVENTS = 3000
DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")
FOUR_PLACES = re.compile(r"^-?\d+\.\d{4}$")
Q4 = Decimal("0.0001")

# Allowed next statuses of one order (None = before the first broker answer).
S = pb
TRANSITIONS = {
    None: {S.ORDER_STATUS_PENDING_NEW},
    S.ORDER_STATUS_PENDING_NEW: {S.ORDER_STATUS_NEW, S.ORDER_STATUS_REJECTED},
    S.ORDER_STATUS_NEW: {S.ORDER_STATUS_PENDING_REPLACE, S.ORDER_STATUS_PARTIALLY_FILLED, S.ORDER_STATUS_FILLED,
                         S.ORDER_STATUS_PENDING_CANCEL},
    S.ORDER_STATUS_PENDING_REPLACE: {S.ORDER_STATUS_REPLACED},
    S.ORDER_STATUS_REPLACED: {S.ORDER_STATUS_PARTIALLY_FILLED, S.ORDER_STATUS_FILLED, S.ORDER_STATUS_PENDING_CANCEL},
    S.ORDER_STATUS_PARTIALLY_FILLED: {S.ORDER_STATUS_PARTIALLY_FILLED, S.ORDER_STATUS_FILLED,
                                      S.ORDER_STATUS_PENDING_CANCEL},
    S.ORDER_STATUS_PENDING_CANCEL: {S.ORDER_STATUS_CANCELLED},
}
TERMINAL = {S.ORDER_STATUS_FILLED, S.ORDER_STATUS_CANCELLED, S.ORDER_STATUS_REJECTED}


@pytest.fixture(scope="module")
def org():
    return OrgDirectory.from_key_specs(["k:acme"], accounts_per_org=3).organizations[0]


@pytest.fixture(scope="module")
def events(org):
    generator = OrgEventGenerator(org, seed=7)
    return [g.event for g in generator.take(N_EVENTS)]


def members(events, name):
    return [getattr(e, name) for e in events if e.WhichOneof("event") == name]


def test_same_seed_same_events_other_seed_differs(org):
    first = [g.event.SerializeToString() for g in OrgEventGenerator(org, seed=42).take(500)]
    again = [g.event.SerializeToString() for g in OrgEventGenerator(org, seed=42).take(500)]
    other = [g.event.SerializeToString() for g in OrgEventGenerator(org, seed=43).take(500)]
    assert first == again
    assert first != other


def test_every_kind_occurs_and_accounts_belong_to_org(events, org):
    kinds = {e.WhichOneof("event") for e in events}
    assert kinds == {"intent_action", "broker_order", "broker_trade", "broker_position"}
    for e in events:
        payload = getattr(e, e.WhichOneof("event"))
        assert payload.account_id in org.account_ids
        assert payload.organization_id == org.id
        assert not payload.HasField("received_at")  # stamped at emit time by the hub, not here


def test_order_statuses_follow_valid_paths_and_state_matches(events):
    last_status = {}
    for order in members(events, "broker_order"):
        previous = last_status.get(order.order_id)
        assert previous not in TERMINAL, "no update after a terminal status"
        assert order.order_status in TRANSITIONS[previous], (previous, order.order_status)
        assert order.order_state == order_state_for(order.order_status)
        if order.order_status == S.ORDER_STATUS_REJECTED:
            assert order.order_state == S.ORDER_STATE_REJECTED
        elif order.order_status in TERMINAL:
            assert order.order_state == S.ORDER_STATE_CLOSED
        else:
            assert order.order_state == S.ORDER_STATE_OPEN
        assert order.HasField("instrument")
        assert order.HasField("external_order_id") == (order.order_status not in (
            S.ORDER_STATUS_PENDING_NEW, S.ORDER_STATUS_REJECTED))
        last_status[order.order_id] = order.order_status
    finals = set(last_status.values())
    assert {S.ORDER_STATUS_FILLED, S.ORDER_STATUS_CANCELLED, S.ORDER_STATUS_REJECTED} <= finals


def test_command_seq_is_the_latest_intent_action_seq(events):
    seqs: dict[str, list[int]] = defaultdict(list)
    actions: dict[str, list[int]] = defaultdict(list)
    for e in events:
        kind = e.WhichOneof("event")
        if kind == "intent_action":
            a = e.intent_action
            assert a.seq == len(seqs[a.intent_id]) + 1, "seq 1, 2, 3 in order"
            seqs[a.intent_id].append(a.seq)
            actions[a.intent_id].append(a.action_type)
        elif kind == "broker_order":
            o = e.broker_order
            assert seqs[o.intent_id], "an order follows its intent action"
            assert o.command_seq == seqs[o.intent_id][-1]
            if o.order_status in (S.ORDER_STATUS_PENDING_CANCEL, S.ORDER_STATUS_CANCELLED):
                assert actions[o.intent_id][-1] == S.INTENT_ACTION_TYPE_CANCEL
            if o.order_status in (S.ORDER_STATUS_PENDING_REPLACE, S.ORDER_STATUS_REPLACED):
                assert actions[o.intent_id][-1] == S.INTENT_ACTION_TYPE_REPLACE
    for types in actions.values():
        assert types[0] == S.INTENT_ACTION_TYPE_CREATE
        assert all(t in (S.INTENT_ACTION_TYPE_REPLACE, S.INTENT_ACTION_TYPE_CANCEL) for t in types[1:])
    assert any(len(s) >= 2 for s in seqs.values())


def test_trade_quantities_add_up_to_filled_quantity(events):
    last_order = {}
    for order in members(events, "broker_order"):
        last_order[order.order_id] = order
    trades = defaultdict(list)
    for trade in members(events, "broker_trade"):
        trades[trade.client_order_id].append(trade)
    exec_ids = [t.exec_id for ts in trades.values() for t in ts]
    assert all(exec_ids) and len(set(exec_ids)) == len(exec_ids)
    for order_id, order in last_order.items():
        fills = trades.get(order_id, [])
        total = sum((Decimal(t.quantity) for t in fills), Decimal(0))
        assert total == Decimal(order.filled_quantity)
        running = Decimal(0)
        for t in fills:
            running += Decimal(t.quantity)
            assert Decimal(t.quantity) > 0
            assert Decimal(t.cumulative_quantity) == running
            assert Decimal(t.leaves_quantity) == Decimal(t.order_quantity) - running
            assert t.order_id == order.external_order_id  # the broker's id
        if order.order_status == S.ORDER_STATUS_FILLED:
            assert Decimal(order.filled_quantity) == Decimal(order.quantity)
            assert Decimal(fills[-1].leaves_quantity) == 0
        if order.order_status == S.ORDER_STATUS_CANCELLED:
            assert Decimal(order.filled_quantity) < Decimal(order.quantity)
        if fills:
            notional = sum((Decimal(t.quantity) * Decimal(t.price) for t in fills), Decimal(0))
            expected = (notional / Decimal(order.filled_quantity)).quantize(Q4, ROUND_HALF_EVEN)
            assert order.average_price == format(expected, "f")
        else:
            assert not order.HasField("average_price")


def test_decimal_strings_are_well_formed(events):
    for order in members(events, "broker_order"):
        assert DECIMAL.match(order.quantity) and DECIMAL.match(order.filled_quantity)
        if order.HasField("limit_price"):
            assert FOUR_PLACES.match(order.limit_price)
    for trade in members(events, "broker_trade"):
        assert FOUR_PLACES.match(trade.price)
        for text in (trade.quantity, trade.cumulative_quantity, trade.leaves_quantity, trade.order_quantity):
            assert DECIMAL.match(text)
    for position in members(events, "broker_position"):
        assert DECIMAL.match(position.quantity)
        for text in (position.average_cost, position.realized_pnl, position.value_bought, position.value_sold):
            assert FOUR_PLACES.match(text) and not text.startswith("-0.0000")
        assert not position.HasField("daily_pnl")  # unknown to the sim: absent, never "0"


def test_positions_follow_the_fills_exactly(events):
    """Re-derive every position from the trades with plain Decimal arithmetic
    (add: weighted average at 4 places; reduce: cost unchanged; flip: fill price)."""
    book: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
    pending = None
    flips = flats = 0
    for e in events:
        kind = e.WhichOneof("event")
        if kind == "broker_trade":
            pending = e.broker_trade
        elif kind == "broker_position":
            trade, pending = pending, None
            assert trade is not None, "each position update follows its fill"
            position = e.broker_position
            key = (position.account_id, position.symbol)
            assert key == (trade.account_id, trade.symbol)
            qty, avg = book.get(key, (Decimal(0), Decimal(0)))
            q, p = Decimal(trade.quantity), Decimal(trade.price)
            signed = q if trade.side == S.ORDER_SIDE_BUY else -q
            new_qty = qty + signed
            if qty == 0 or (qty > 0) == (signed > 0):
                avg = ((abs(qty) * avg + q * p) / abs(new_qty)).quantize(Q4, ROUND_HALF_EVEN)
            elif new_qty == 0:
                avg = Decimal(0)
            elif (new_qty > 0) != (qty > 0):
                avg = p.quantize(Q4)
            book[key] = (new_qty, avg)
            assert Decimal(position.quantity) == new_qty
            assert position.average_cost == format(avg.quantize(Q4), "f")
            flips += qty != 0 and new_qty != 0 and (qty > 0) != (new_qty > 0)
            flats += new_qty == 0
    assert flips and flats, "the sample exercises side flips and flat positions"


def test_unconvertible_every_nth_event(org):
    generated = OrgEventGenerator(org, seed=1, unconvertible_every=5).take(40)
    faulty = [i for i, g in enumerate(generated, 1) if g.fault]
    assert faulty == [5, 10, 15, 20, 25, 30, 35, 40]
    kinds = [generated[i - 1].fault for i in faulty]
    assert kinds[:2] == [FAULT_INVALID_DECIMAL, FAULT_MISSING_INSTRUMENT]
    bad_decimal = generated[4].event.broker_order
    assert bad_decimal.quantity == INVALID_DECIMAL and bad_decimal.HasField("instrument")
    no_instrument = generated[9].event.broker_order
    assert not no_instrument.HasField("instrument") and DECIMAL.match(no_instrument.quantity)
