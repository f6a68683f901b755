"""Contract C events for the Anthid producer's unit tests, built with the
generated stubs (values chosen to catch re-formatting: trailing zeros,
tiny and huge decimals, negative P&L, nanoseconds)."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from tradebus.protos import pb

ORG = "0f8e1f4a-7a53-5c1c-9d1e-6f4b2a1c9e01"
ACCOUNT = "6a1b5c1e-3c2d-5e4f-8a9b-0c1d2e3f4a5b"
T_RECEIVED = Timestamp(seconds=1776861479, nanos=123456789)  # 2026-04-22T12:37:59.123456789Z
T_SENT = Timestamp(seconds=1776861478, nanos=999)


def equity():
    return pb.Instrument(equity=pb.Equity(symbol="AAPL", exchange="XNAS"))


def order(**overrides):
    fields = dict(
        order_id="o-1", intent_id="i-1", command_seq=3, account_id=ACCOUNT, broker=pb.BROKER_ALPACA, symbol="AAPL",
        order_state=pb.ORDER_STATE_OPEN, order_status=pb.ORDER_STATUS_PARTIALLY_FILLED, order_type=pb.ORDER_TYPE_LIMIT,
        order_side=pb.ORDER_SIDE_BUY, limit_price="123.4500", average_price="123.44000000000000000001",
        order_venue=pb.ORDER_VENUE_SMART, quantity="100", filled_quantity="40.000000001",
        time_in_force=pb.TIME_IN_FORCE_DAY, received_at=T_RECEIVED, organization_id=ORG,
        client_reference_id="ref-7", instrument=equity(),
    )
    fields.update(overrides)
    return pb.BrokerOrder(**fields)


def position(**overrides):
    fields = dict(
        account_id=ACCOUNT, symbol="AAPL", quantity="-40", average_cost="123.4400", received_at=T_RECEIVED,
        organization_id=ORG, broker=pb.BROKER_LIGHTSPEED_CONNECT, broker_sent_at=T_SENT, realized_pnl="-1.50",
        value_bought="4937.60",
    )
    fields.update(overrides)
    return pb.BrokerPosition(**fields)


def trade(**overrides):
    fields = dict(
        account_id=ACCOUNT, order_id="b-1", client_order_id="o-1", symbol="AAPL", side=pb.ORDER_SIDE_SELL_SHORT,
        quantity="40", price="123.44", received_at=T_RECEIVED, organization_id=ORG, exec_id="e-1",
        cumulative_quantity="40", order_quantity="100", leaves_quantity="60", instrument=equity(),
    )
    fields.update(overrides)
    return pb.BrokerTrade(**fields)


def intent_action(**overrides):
    fields = dict(
        intent_id="i-1", organization_id=ORG, account_id=ACCOUNT, seq=1, action_type=pb.INTENT_ACTION_TYPE_CREATE,
        symbol="AAPL", order_side=pb.ORDER_SIDE_BUY, order_type=pb.ORDER_TYPE_LIMIT, limit_price="123.4500",
        order_venue=pb.ORDER_VENUE_SMART, quantity="100", principal_type=pb.INTENT_PRINCIPAL_TYPE_API_KEY,
        received_at=T_RECEIVED, created_at=T_SENT,
    )
    fields.update(overrides)
    return pb.IntentAction(**fields)


def wrap(member) -> bytes:
    """The TradingEvent bytes carrying ``member``."""
    name = {"BrokerOrder": "broker_order", "BrokerPosition": "broker_position", "BrokerTrade": "broker_trade",
            "IntentAction": "intent_action"}[type(member).__name__]
    return pb.TradingEvent(**{name: member}).SerializeToString()
