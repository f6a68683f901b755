"""Contract C data events -> tradebus.v1 Avro record dicts, their topic and key.

A record holds every field of the member message, enums by name, decimal
strings unchanged, timestamps as aware UTC datetimes, and the member's
protobuf bytes exactly as received (``upstream_protobuf``). ``metadata`` is
added by the caller, which knows when and how the event arrived.
Anything that cannot be converted raises ConversionError (-> DLQ).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from google.protobuf.message import DecodeError

from producers.anthid import wire
from producers.anthid.instruments import convert_instrument
from producers.anthid.values import (
    ConversionError, decimal, enum_name, identity, optional_decimal, optional_text, optional_timestamp, timestamp,
)
from tradebus.protos import pb
from tradebus.topics import BROKER_ORDERS, BROKER_POSITIONS, BROKER_TRADES, INTENT_ACTIONS, Topic


def convert_order(m, member_bytes: bytes) -> dict:
    identity(m, "order_id")
    return {
        "order_id": m.order_id, "intent_id": m.intent_id, "command_seq": m.command_seq,
        "external_order_id": optional_text(m, "external_order_id"), "account_id": m.account_id,
        "broker": enum_name(pb.Broker, m.broker), "symbol": m.symbol,
        "order_state": enum_name(pb.OrderState, m.order_state), "order_status": enum_name(pb.OrderStatus, m.order_status),
        "order_type": enum_name(pb.OrderType, m.order_type), "order_side": enum_name(pb.OrderSide, m.order_side),
        "limit_price": optional_decimal(m, "limit_price"), "stop_price": optional_decimal(m, "stop_price"),
        "average_price": optional_decimal(m, "average_price"), "order_venue": enum_name(pb.OrderVenue, m.order_venue),
        "quantity": decimal(m, "quantity"), "filled_quantity": decimal(m, "filled_quantity"),
        "time_in_force": enum_name(pb.TimeInForce, m.time_in_force), "received_at": timestamp(m, "received_at"),
        "organization_id": m.organization_id, "client_reference_id": optional_text(m, "client_reference_id"),
        "broker_sent_at": optional_timestamp(m, "broker_sent_at"),
        # The application contract treats an order's instrument as mandatory (spec §4.2).
        "instrument": convert_instrument(m.instrument, mandatory=True, owner="BrokerOrder"),
        "upstream_protobuf": member_bytes,
    }


def convert_position(m, member_bytes: bytes) -> dict:
    identity(m, "account_id", "symbol")
    return {
        "account_id": m.account_id, "symbol": m.symbol, "quantity": decimal(m, "quantity"),
        "average_cost": decimal(m, "average_cost"), "received_at": timestamp(m, "received_at"),
        "organization_id": m.organization_id, "broker": enum_name(pb.Broker, m.broker),
        "broker_sent_at": optional_timestamp(m, "broker_sent_at"),
        "instrument": convert_instrument(m.instrument, mandatory=False, owner="BrokerPosition") if m.HasField("instrument") else None,
        "realized_pnl": optional_decimal(m, "realized_pnl"), "daily_pnl": optional_decimal(m, "daily_pnl"),
        "value_bought": optional_decimal(m, "value_bought"), "value_sold": optional_decimal(m, "value_sold"),
        "upstream_protobuf": member_bytes,
    }


def convert_trade(m, member_bytes: bytes) -> dict:
    identity(m, "account_id", "order_id")
    return {
        "account_id": m.account_id, "order_id": m.order_id, "client_order_id": m.client_order_id, "symbol": m.symbol,
        "side": enum_name(pb.OrderSide, m.side), "quantity": decimal(m, "quantity"), "price": decimal(m, "price"),
        "received_at": timestamp(m, "received_at"), "organization_id": m.organization_id,
        "exec_id": optional_text(m, "exec_id"), "cumulative_quantity": optional_decimal(m, "cumulative_quantity"),
        "order_quantity": optional_decimal(m, "order_quantity"), "leaves_quantity": optional_decimal(m, "leaves_quantity"),
        "broker_sent_at": optional_timestamp(m, "broker_sent_at"),
        "instrument": convert_instrument(m.instrument, mandatory=False, owner="BrokerTrade") if m.HasField("instrument") else None,
        "upstream_protobuf": member_bytes,
    }


def convert_intent_action(m, member_bytes: bytes) -> dict:
    identity(m, "intent_id")
    return {
        "intent_id": m.intent_id, "organization_id": m.organization_id, "account_id": m.account_id, "seq": m.seq,
        "action_type": enum_name(pb.IntentActionType, m.action_type), "symbol": m.symbol,
        "order_side": enum_name(pb.OrderSide, m.order_side), "order_type": enum_name(pb.OrderType, m.order_type),
        "limit_price": optional_decimal(m, "limit_price"), "stop_price": optional_decimal(m, "stop_price"),
        "order_venue": enum_name(pb.OrderVenue, m.order_venue),
        "time_in_force": enum_name(pb.TimeInForce, m.time_in_force) if m.HasField("time_in_force") else None,
        "quantity": decimal(m, "quantity"), "client_reference_id": optional_text(m, "client_reference_id"),
        "principal_type": enum_name(pb.IntentPrincipalType, m.principal_type),
        "received_at": timestamp(m, "received_at"), "created_at": timestamp(m, "created_at"),
        "upstream_protobuf": member_bytes,
    }


@dataclass(frozen=True)
class DataKind:
    """One data member of the TradingEvent oneof and where it goes."""

    event: str  # oneof member name, also metadata.upstream_event
    event_type: str  # trading.EventType name
    field_number: int  # in TradingEvent
    topic: Topic
    convert: Callable[[object, bytes], dict]
    key: Callable[[dict], str]


DATA_KINDS: dict[str, DataKind] = {
    kind.event: kind for kind in (
        DataKind("broker_order", "EVENT_TYPE_BROKER_ORDER", 4, BROKER_ORDERS, convert_order, lambda r: r["order_id"]),
        DataKind("broker_position", "EVENT_TYPE_BROKER_POSITION", 5, BROKER_POSITIONS, convert_position,
                 lambda r: f"{r['account_id']}|{r['symbol']}"),
        DataKind("broker_trade", "EVENT_TYPE_BROKER_TRADE", 6, BROKER_TRADES, convert_trade,
                 lambda r: f"{r['account_id']}|{r['order_id']}"),
        DataKind("intent_action", "EVENT_TYPE_INTENT_ACTION", 7, INTENT_ACTIONS, convert_intent_action, lambda r: r["intent_id"]),
    )
}
KIND_BY_EVENT_TYPE = {kind.event_type: kind for kind in DATA_KINDS.values()}


def decode_event(raw: bytes):
    """A trading.TradingEvent from the bytes of one stream message."""
    try:
        return pb.TradingEvent.FromString(raw)
    except DecodeError as exc:
        raise ConversionError("undecodable", f"not a trading.TradingEvent: {exc}") from None


def convert_data(kind: DataKind, event, raw: bytes) -> tuple[str, dict]:
    """(key, record without metadata) for a data event of ``kind``."""
    member = getattr(event, kind.event)
    try:
        member_bytes = wire.field_bytes(raw, kind.field_number)
    except ValueError:
        member_bytes = None
    if member_bytes is None:  # repeated or odd framing: the parsed member is the truth
        member_bytes = member.SerializeToString()
    record = kind.convert(member, member_bytes)
    return kind.key(record), record
