"""The store's tables as the writer sees them: columns, primary key and what
happens when a row with the same key is already there.

The DDL lives in the numbered migrations (migrations/<dialect>/NNNN_*.sql);
tests check that every column here exists in the migrated database. Decimal
columns are TEXT holding the exact upstream string; in PostgreSQL the views
``<table>_numeric`` add a ``<column>_num NUMERIC`` twin of each, computed on
read.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class OnConflict(Enum):
    KEEP = "keep"  # immutable event: the first write wins (DO NOTHING)
    NEWEST = "newest"  # current state: replaced only by a strictly newer version
    REPLACE = "replace"  # the latest record wins (alerts: delivery status updates)


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    on_conflict: OnConflict
    newer_by: tuple[str, ...] = ()  # NEWEST: compared as a tuple, strictly greater wins

    @property
    def key_index(self) -> tuple[int, ...]:
        return tuple(self.columns.index(c) for c in self.key)

    @property
    def newer_index(self) -> tuple[int, ...]:
        return tuple(self.columns.index(c) for c in self.newer_by)


METADATA = ("ingested_at", "producer_instance", "replay")
INSTRUMENT = ("instrument_kind", "instrument_symbol", "instrument_exchange", "instrument_attributes")

IDEA_COLUMNS = (
    "idea_id", "last_update_text", "last_update", "id", "document_id", "prefix", "asset_class", "instrument",
    "timeframe", "side", "open_order_type", "price", "take_profit", "stop_loss", "confidence", "estimated_pl",
    "description", "creation_time", "expiration_time", "unknown_fields", "upstream_json", *METADATA,
)
ORDER_COLUMNS = (
    "order_id", "command_seq", "order_status", "filled_quantity", "received_at", "intent_id", "external_order_id",
    "account_id", "broker", "symbol", "order_state", "order_type", "order_side", "limit_price", "stop_price",
    "average_price", "order_venue", "quantity", "time_in_force", "organization_id", "client_reference_id",
    "broker_sent_at", *INSTRUMENT, "upstream_protobuf", *METADATA,
)
POSITION_COLUMNS = (
    "account_id", "symbol", "received_at", "quantity", "average_cost", "organization_id", "broker", "broker_sent_at",
    *INSTRUMENT, "realized_pnl", "daily_pnl", "value_bought", "value_sold", "upstream_protobuf", *METADATA,
)
TRADE_COLUMNS = (
    "trade_key", "exec_id", "account_id", "order_id", "client_order_id", "symbol", "side", "quantity", "price",
    "received_at", "organization_id", "cumulative_quantity", "order_quantity", "leaves_quantity", "broker_sent_at",
    *INSTRUMENT, "upstream_protobuf", *METADATA,
)
INTENT_COLUMNS = (
    "intent_id", "seq", "organization_id", "account_id", "action_type", "symbol", "order_side", "order_type",
    "limit_price", "stop_price", "order_venue", "time_in_force", "quantity", "client_reference_id", "principal_type",
    "received_at", "created_at", "upstream_protobuf", *METADATA,
)
ALERT_COLUMNS = (
    "alert_id", "rule", "alert_key", "severity", "title", "message", "fired_at", "source_topic", "source_key",
    "event_time", "deliveries", "details",
)

IDEAS = Table("ideas", IDEA_COLUMNS, ("idea_id",), OnConflict.NEWEST, ("last_update", "last_update_text"))
IDEA_VERSIONS = Table("idea_versions", IDEA_COLUMNS, ("idea_id", "last_update_text"), OnConflict.KEEP)
ORDERS = Table("orders", ORDER_COLUMNS, ("order_id",), OnConflict.NEWEST, ("received_at", "command_seq"))
ORDER_EVENTS = Table("order_events", ORDER_COLUMNS,
                     ("order_id", "command_seq", "order_status", "filled_quantity", "received_at"), OnConflict.KEEP)
POSITIONS = Table("positions", POSITION_COLUMNS, ("account_id", "symbol"), OnConflict.NEWEST, ("received_at",))
TRADES = Table("trades", TRADE_COLUMNS, ("trade_key",), OnConflict.KEEP)
INTENT_ACTIONS = Table("intent_actions", INTENT_COLUMNS, ("intent_id", "seq"), OnConflict.KEEP)
ALERTS = Table("alerts", ALERT_COLUMNS, ("alert_id",), OnConflict.REPLACE)

TABLES: dict[str, Table] = {t.name: t for t in
                            (IDEAS, IDEA_VERSIONS, ORDERS, ORDER_EVENTS, POSITIONS, TRADES, INTENT_ACTIONS, ALERTS)}

# Decimal strings: TEXT everywhere (exact); PostgreSQL's <table>_numeric views add <column>_num NUMERIC.
DECIMAL_COLUMNS = {
    "orders": ("limit_price", "stop_price", "average_price", "quantity", "filled_quantity"),
    "order_events": ("limit_price", "stop_price", "average_price", "quantity", "filled_quantity"),
    "positions": ("quantity", "average_cost", "realized_pnl", "daily_pnl", "value_bought", "value_sold"),
    "trades": ("quantity", "price", "cumulative_quantity", "order_quantity", "leaves_quantity"),
    "intent_actions": ("limit_price", "stop_price", "quantity"),
}
