"""Decoded records -> table rows (tuples in each Table's column order).

One record may give more than one row: an idea version is a row of
idea_versions and a candidate for ideas (the current version); an order event
is a row of order_events and a candidate for orders.

Within a batch rows are kept per table *by primary key*, resolved with the
same rule the database applies (:class:`~consumers.store.tables.OnConflict`),
so one statement never touches a row twice and replaying a batch is a no-op.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from operator import itemgetter
from typing import Any, Callable

from consumers.dedup.identity import trade_identity
from consumers.store import tables as T
from tradebus.topics import ALERTS, BROKER_ORDERS, BROKER_POSITIONS, BROKER_TRADES, HTI_IDEAS, INTENT_ACTIONS

Timestamp = Callable[[datetime | None], Any]
Json = Callable[[Any], Any]


def iso_utc(value: datetime | None) -> str | None:
    """SQLite: fixed-width ISO-8601 in UTC (2026-04-22T13:17:47.123456+00:00),
    so text order is time order. (%-formatting: the fastest way in CPython.)"""
    if value is None:
        return None
    if value.tzinfo is not timezone.utc:
        value = value.astimezone(timezone.utc)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06d+00:00" % (
        value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond)


def as_is(value):
    """PostgreSQL: timestamps and JSON go to the driver as Python objects."""
    return value


def to_json(value) -> str:
    """SQLite: JSON text, keys sorted."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


class Dialect:
    """How values a row holds differ per database: timestamps and JSON."""

    def __init__(self, timestamp: Timestamp, json_value: Json):
        self.timestamp = timestamp
        self.json = json_value


SQLITE = Dialect(iso_utc, to_json)
POSTGRESQL = Dialect(as_is, as_is)  # binary COPY: datetime -> timestamptz, dict/list -> jsonb


def _meta(r: dict, d: Dialect) -> tuple:
    m = r["metadata"]
    return (d.timestamp(m["received_at"]), m["producer_instance"], m["replay"])


def _instrument(value: dict | None) -> tuple:
    if not value:
        return (None, None, None, None)
    return (value["kind"], value["symbol"], value.get("exchange"), value["attributes_json"])


def idea_row(r: dict, d: Dialect) -> tuple:
    ts = d.timestamp
    return (
        r["idea_id"], r["last_update_text"], ts(r["last_update"]), r.get("id"), r.get("document_id"), r.get("prefix"),
        r.get("asset_class"), r.get("instrument"), r.get("timeframe"), r.get("side"), r.get("open_order_type"),
        r.get("price"), r.get("take_profit"), r.get("stop_loss"), r.get("confidence"), r.get("estimated_pl"),
        r.get("description"), ts(r.get("creation_time")), ts(r.get("expiration_time")),
        d.json(r.get("unknown_fields") or {}), r["upstream_json"], *_meta(r, d),
    )


def order_row(r: dict, d: Dialect) -> tuple:
    ts = d.timestamp
    return (
        r["order_id"], r["command_seq"], r["order_status"], r["filled_quantity"], ts(r["received_at"]), r["intent_id"],
        r.get("external_order_id"), r["account_id"], r["broker"], r["symbol"], r["order_state"], r["order_type"],
        r["order_side"], r.get("limit_price"), r.get("stop_price"), r.get("average_price"), r["order_venue"],
        r["quantity"], r["time_in_force"], r["organization_id"], r.get("client_reference_id"),
        ts(r.get("broker_sent_at")), *_instrument(r.get("instrument")), r["upstream_protobuf"], *_meta(r, d),
    )


def position_row(r: dict, d: Dialect) -> tuple:
    ts = d.timestamp
    return (
        r["account_id"], r["symbol"], ts(r["received_at"]), r["quantity"], r["average_cost"], r["organization_id"],
        r["broker"], ts(r.get("broker_sent_at")), *_instrument(r.get("instrument")), r.get("realized_pnl"),
        r.get("daily_pnl"), r.get("value_bought"), r.get("value_sold"), r["upstream_protobuf"], *_meta(r, d),
    )


def trade_key(r: dict) -> str:
    """exec|<exec_id>, or cumulative|<order_id>|<cumulative_quantity> without an exec id."""
    return "|".join(trade_identity(r))


def trade_row(r: dict, d: Dialect) -> tuple:
    ts = d.timestamp
    return (
        trade_key(r), r.get("exec_id") or None, r["account_id"], r["order_id"], r["client_order_id"], r["symbol"],
        r["side"], r["quantity"], r["price"], ts(r["received_at"]), r["organization_id"], r.get("cumulative_quantity"),
        r.get("order_quantity"), r.get("leaves_quantity"), ts(r.get("broker_sent_at")),
        *_instrument(r.get("instrument")), r["upstream_protobuf"], *_meta(r, d),
    )


def intent_row(r: dict, d: Dialect) -> tuple:
    ts = d.timestamp
    return (
        r["intent_id"], r["seq"], r["organization_id"], r["account_id"], r["action_type"], r["symbol"],
        r["order_side"], r["order_type"], r.get("limit_price"), r.get("stop_price"), r["order_venue"],
        r.get("time_in_force"), r["quantity"], r.get("client_reference_id"), r["principal_type"],
        ts(r["received_at"]), ts(r["created_at"]), r["upstream_protobuf"], *_meta(r, d),
    )


def alert_row(r: dict, d: Dialect) -> tuple:
    ts = d.timestamp
    return (
        r["alert_id"], r["rule"], r["alert_key"], r["severity"], r["title"], r["message"], ts(r["fired_at"]),
        r.get("source_topic"), r.get("source_key"), ts(r.get("event_time")), d.json(r.get("deliveries") or []),
        d.json(r.get("details") or {}),
    )


# Topic (registry name) -> (row function, tables the row goes to).
ROUTES: dict[str, tuple[Callable[[dict, Dialect], tuple], tuple[T.Table, ...]]] = {
    HTI_IDEAS.name: (idea_row, (T.IDEA_VERSIONS, T.IDEAS)),
    BROKER_ORDERS.name: (order_row, (T.ORDER_EVENTS, T.ORDERS)),
    BROKER_POSITIONS.name: (position_row, (T.POSITIONS,)),
    BROKER_TRADES.name: (trade_row, (T.TRADES,)),
    INTENT_ACTIONS.name: (intent_row, (T.INTENT_ACTIONS,)),
    ALERTS.name: (alert_row, (T.ALERTS,)),
}


class RowBatch:
    """Rows of one batch, per table, one per primary key."""

    def __init__(self, dialect: Dialect):
        self.dialect = dialect
        self.tables: dict[str, dict[tuple, tuple]] = {}
        self._keys = {t.name: itemgetter(*t.key_index) for t in T.TABLES.values()}
        self._newer = {t.name: itemgetter(*t.newer_index) for t in T.TABLES.values() if t.newer_by}

    def add_record(self, topic: str, record: dict) -> None:
        """Add a decoded record of a registry topic (its bare name)."""
        make_row, tables = ROUTES[topic]
        row = make_row(record, self.dialect)
        for table in tables:
            self.add(table, row)

    def add(self, table: T.Table, row: tuple) -> None:
        rows = self.tables.get(table.name)
        if rows is None:
            rows = self.tables[table.name] = {}
        key = self._keys[table.name](row)
        current = rows.get(key)
        if current is None or table.on_conflict is T.OnConflict.REPLACE:
            rows[key] = row
        elif table.on_conflict is T.OnConflict.NEWEST:
            newer = self._newer[table.name]
            if newer(row) > newer(current):
                rows[key] = row
        # KEEP: the first row stays

    def __len__(self) -> int:
        return sum(len(rows) for rows in self.tables.values())

    def clear(self) -> None:
        self.tables.clear()
