"""Retained state, subscription scopes and position arithmetic of the Anthid sim."""

from __future__ import annotations

from decimal import Decimal

from simulators.anthid.book import Position, apply_fill
from simulators.anthid.events import Emission, stamp
from simulators.anthid.orgs import OrgDirectory
from simulators.anthid.state import RetainedState
from simulators.anthid.subscriptions import ERROR_NO_KINDS, ERROR_UNKNOWN_ACCOUNT, scope_from_subscribe
from tradebus.protos import pb

ORG = OrgDirectory.from_key_specs(["k:acme"]).organizations[0]
ACCOUNT, OTHER = ORG.account_ids


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def order(order_id, status, account=ACCOUNT, symbol="AAPL", at_ns=1):
    event = pb.TradingEvent(broker_order=pb.BrokerOrder(
        order_id=order_id, account_id=account, symbol=symbol, order_status=status,
        instrument=pb.Instrument(equity=pb.Equity(symbol=symbol))))
    stamp(event, at_ns)
    return Emission(ORG.id, event)


def position(quantity, account=ACCOUNT, symbol="AAPL", at_ns=1):
    event = pb.TradingEvent(broker_position=pb.BrokerPosition(account_id=account, symbol=symbol, quantity=quantity))
    stamp(event, at_ns)
    return Emission(ORG.id, event)


def ids(emissions):
    return [getattr(e.event, e.event.WhichOneof("event")).order_id for e in emissions]


def test_working_orders_kept_terminal_orders_expire():
    clock = FakeClock()
    state = RetainedState(retention_seconds=60, clock=clock)
    state.apply(order("working", pb.ORDER_STATUS_NEW, at_ns=1))
    state.apply(order("done", pb.ORDER_STATUS_NEW, at_ns=2))
    state.apply(order("done", pb.ORDER_STATUS_FILLED, at_ns=3))  # replaces the NEW snapshot
    assert ids(state.orders()) == ["working", "done"]
    assert state.orders()[1].event.broker_order.order_status == pb.ORDER_STATUS_FILLED
    clock.now += 59
    assert ids(state.orders()) == ["working", "done"]
    clock.now += 1
    assert ids(state.orders()) == ["working"]
    clock.now += 10_000
    assert ids(state.orders()) == ["working"], "working orders are kept until updated"


def test_flat_positions_expire_non_zero_kept():
    clock = FakeClock()
    state = RetainedState(retention_seconds=5, clock=clock)
    state.apply(position("10", symbol="AAPL"))
    state.apply(position("0", symbol="MSFT"))
    state.apply(position("0.0000", symbol="BTC-USD"))
    assert len(state.positions()) == 3
    clock.now += 5
    assert [p.event.broker_position.symbol for p in state.positions()] == ["AAPL"]
    state.apply(position("0", symbol="AAPL"))  # goes flat: now it expires too
    clock.now += 5
    state.purge()
    assert state.positions() == []


def test_scope_validation():
    assert scope_from_subscribe(pb.Subscribe(), ORG) == ERROR_NO_KINDS
    assert scope_from_subscribe(pb.Subscribe(subscriptions=[pb.EVENT_TYPE_UNSPECIFIED, 9]), ORG) == ERROR_NO_KINDS
    foreign = pb.Subscribe(trading_account_id="00000000-0000-0000-0000-000000000000",
                           subscriptions=[pb.EVENT_TYPE_BROKER_ORDER])
    assert scope_from_subscribe(foreign, ORG) == ERROR_UNKNOWN_ACCOUNT
    scope = scope_from_subscribe(pb.Subscribe(subscriptions=[pb.EVENT_TYPE_BROKER_ORDER, 9],
                                              instrument_key="AAPL", order_delivery=pb.ORDER_DELIVERY_PRIMED), ORG)
    assert scope.kinds == {pb.EVENT_TYPE_BROKER_ORDER} and scope.primed_orders
    assert scope.instrument_key == "", "ignored for org-wide subscriptions"


def test_scope_matching_and_instrument_filter():
    kinds = [pb.EVENT_TYPE_BROKER_ORDER, pb.EVENT_TYPE_BROKER_POSITION, pb.EVENT_TYPE_BROKER_TRADE]
    org_wide = scope_from_subscribe(pb.Subscribe(subscriptions=kinds), ORG)
    named = scope_from_subscribe(pb.Subscribe(trading_account_id=ACCOUNT, subscriptions=kinds,
                                              instrument_key="BRK_B", instrument_class="equity"), ORG)
    brk = order("o1", pb.ORDER_STATUS_NEW, symbol="BRK.B").event
    aapl = order("o2", pb.ORDER_STATUS_NEW, symbol="AAPL").event
    other_account = order("o3", pb.ORDER_STATUS_NEW, account=OTHER, symbol="BRK.B").event
    trade_aapl = pb.TradingEvent(broker_trade=pb.BrokerTrade(account_id=ACCOUNT, symbol="AAPL"))
    intent = pb.TradingEvent(intent_action=pb.IntentAction(account_id=ACCOUNT))
    assert org_wide.matches(brk) and org_wide.matches(aapl) and org_wide.matches(other_account)
    assert named.matches(brk) and not named.matches(aapl) and not named.matches(other_account)
    assert named.matches(trade_aapl), "the instrument filter does not narrow trades"
    assert not named.matches(intent) and not org_wide.matches(intent), "kind not subscribed"
    crypto_class = scope_from_subscribe(pb.Subscribe(trading_account_id=ACCOUNT, subscriptions=kinds,
                                                     instrument_key="BRK_B", instrument_class="crypto"), ORG)
    assert not crypto_class.matches(brk)


def test_apply_fill_average_realized_and_flip():
    p = Position()
    apply_fill(p, Decimal(10), Decimal("100.00"))
    apply_fill(p, Decimal(20), Decimal("101.00"))
    assert (p.quantity, str(p.average_cost)) == (30, "100.6667")  # 3020 / 30, half-even at 4 places
    apply_fill(p, Decimal(-10), Decimal("102.00"))
    assert (p.quantity, str(p.average_cost), str(p.realized_pnl)) == (20, "100.6667", "13.3330")
    apply_fill(p, Decimal(-25), Decimal("99.50"))  # through zero: 5 short at the fill price
    assert (p.quantity, str(p.average_cost)) == (-5, "99.5000")
    assert str(p.realized_pnl) == "-10.0010"  # 13.3330 + 20 * (99.50 - 100.6667)
    apply_fill(p, Decimal(5), Decimal("99.00"))
    assert (p.quantity, p.average_cost) == (0, 0)
    assert str(p.realized_pnl) == "-7.5010"  # + 5 * (99.50 - 99.00)
    assert (p.value_bought, p.value_sold) == (Decimal("3515.00"), Decimal("3507.50"))
