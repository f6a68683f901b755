"""What each rule kind reads, which parameters it takes, and its default key,
title and message templates. The rule loader validates against this table;
evaluate.py implements the behaviour."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from tradebus.serde import schema_text
from tradebus.topics import BROKER_ORDERS, BROKER_POSITIONS, BROKER_TRADES, HTI_IDEAS, STATUS, UNIQUE_TOPICS, Topic

Parser = Callable[[Any], Any]


def names(value: Any) -> frozenset[str]:
    """A string or a list of strings; matched case-insensitively."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i.strip() for i in items):
        raise ValueError("expected a non-empty string or a list of non-empty strings")
    return frozenset(i.strip().upper() for i in items)


def order_statuses(value: Any) -> frozenset[str]:
    """REJECTED and ORDER_STATUS_REJECTED both name the enum value."""
    return frozenset(s if s.startswith("ORDER_STATUS_") else f"ORDER_STATUS_{s}" for s in names(value))


def fraction(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"expected a fraction between 0 and 1 (0.9 for 90%), got {value!r}")
    return float(value)


def decimal_amount(value: Any) -> Decimal:
    """Exact: 100000 or "100000.50"; a YAML float goes through its text."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected a number, got {value!r}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"expected a number, got {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"expected a non-negative number, got {value!r}")
    return amount


def seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"expected a number of seconds above 0, got {value!r}")
    return float(value)


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def choice(*allowed: str) -> Parser:
    def parse(value: Any) -> str:
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {value!r}")
        return value
    return parse


@dataclass(frozen=True)
class KindSpec:
    name: str
    topic: Topic  # the registry topic it reads (the unique twin for data)
    schema: str
    params: dict[str, Parser]
    required: tuple[str, ...]
    defaults: dict[str, Any]
    key: str
    title: str
    message: str
    extra_fields: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    data: bool = True  # a data record (has metadata and replays), not a status event

    def template_fields(self) -> frozenset[str]:
        return frozenset(record_fields(self.schema, self.data)) | {"rule", "severity"} | set(self.extra_fields)


# Ingest metadata is flattened into these names (received_at clashes with
# the Anthid records' own received_at, so the ingest time is ingested_at).
METADATA_FIELDS = ("source", "producer_instance", "upstream_event", "replay", "ingested_at")
FILTER_ALIASES = {
    "instrument": "instruments", "side": "sides", "asset_class": "asset_classes", "timeframe": "timeframes",
    "account": "accounts", "symbol": "symbols", "source": "sources", "status": "statuses", "event_type": "event_types",
}


def record_fields(schema: str, data: bool) -> list[str]:
    fields = json.loads(schema_text(schema))["fields"]
    def is_bytes(t) -> bool:
        return t == "bytes" or (isinstance(t, list) and "bytes" in t)

    out = [f["name"] for f in fields if f["name"] != "metadata" and not is_bytes(f["type"])]
    return out + list(METADATA_FIELDS) if data else out


KINDS: dict[str, KindSpec] = {k.name: k for k in [
    KindSpec(
        "new_idea", UNIQUE_TOPICS[HTI_IDEAS.name], HTI_IDEAS.value_schema,
        params={"instruments": names, "sides": names, "asset_classes": names, "timeframes": names, "min_confidence": fraction},
        required=(), defaults={},
        key="{rule}:{idea_id}",
        title="New idea: {instrument} {side} {timeframe}",
        message="{instrument} {side} ({open_order_type}) at {price}, take profit {take_profit}, stop loss {stop_loss}, "
                "confidence {confidence}; idea {idea_id}",
    ),
    KindSpec(
        "order_rejected_or_cancelled", UNIQUE_TOPICS[BROKER_ORDERS.name], BROKER_ORDERS.value_schema,
        params={"statuses": order_statuses, "accounts": names, "symbols": names},
        required=(), defaults={"statuses": frozenset({"ORDER_STATUS_REJECTED", "ORDER_STATUS_CANCELLED"})},
        key="{rule}:{order_id}:{order_status}",
        title="Order {status_name}: {symbol} {order_side} {quantity}",
        message="Order {order_id} on account {account_id} ({symbol} {order_side} {quantity} {order_type}) is {order_status}; "
                "filled {filled_quantity}",
        extra_fields=("status_name",),
    ),
    KindSpec(
        "large_fill", UNIQUE_TOPICS[BROKER_TRADES.name], BROKER_TRADES.value_schema,
        params={"min_notional": decimal_amount, "accounts": names, "symbols": names},
        required=("min_notional",), defaults={},
        key="{rule}:{account_id}:{order_id}:{exec_id}",
        title="Large fill: {symbol} {side} notional {notional}",
        message="Account {account_id}: {side} {quantity} {symbol} at {price} = {notional} (order {order_id}, exec {exec_id})",
        extra_fields=("notional",),
    ),
    KindSpec(
        "position_change", UNIQUE_TOPICS[BROKER_POSITIONS.name], BROKER_POSITIONS.value_schema,
        params={"min_change": decimal_amount, "accounts": names, "symbols": names, "alert_on_first": boolean},
        required=("min_change",), defaults={"alert_on_first": False},
        key="{rule}:{account_id}:{symbol}",
        title="Position change: {account_id} {symbol} {previous_quantity} -> {quantity}",
        message="Position {symbol} on account {account_id} moved from {previous_quantity} to {quantity} (change {change})",
        extra_fields=("previous_quantity", "change"),
    ),
    KindSpec(
        "producer_silent", STATUS, STATUS.value_schema,
        params={"silent_seconds": seconds, "per": choice("instance", "source"), "sources": names, "kinds": names},
        required=("silent_seconds",), defaults={"per": "instance"},
        key="{rule}:{source}/{producer_instance}",
        title="Producer silent: {source}/{producer_instance}",
        message="No status event from {source}/{producer_instance} for {silent_for}s (limit {silent_seconds}s); "
                "last was {last_kind} at {last_seen}",
        extra_fields=("silent_for", "silent_seconds", "last_seen", "last_kind"),
        data=False,
    ),
    KindSpec(
        "gap_reported", STATUS, STATUS.value_schema,
        params={"sources": names, "event_types": names},
        required=(), defaults={},
        key="{rule}:{source}/{producer_instance}:{event_type}",
        title="Gap reported by {source}/{producer_instance} ({event_type})",
        message="{source}/{producer_instance} reported a possible gap in {event_type}: {message}",
        data=False,
    ),
]}
