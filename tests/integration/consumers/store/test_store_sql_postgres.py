"""The store's SQL on PostgreSQL, in a schema of its own: the dialect-neutral
tests of the SQLite suite, plus migrations, the NUMERIC views and types."""

from __future__ import annotations

from decimal import Decimal

import pytest

from consumers.store.db import Store, migrations
from consumers.store.tables import DECIMAL_COLUMNS, TABLES
from tests import samples
from tests.unit.consumers.store.test_sqlite_store import (  # noqa: F401  (collected here against PostgreSQL)
    test_current_state_is_the_newest_whatever_the_arrival_order,
    test_intent_actions_keyed_by_intent_and_seq,
    test_replaying_a_batch_changes_nothing,
    test_trades_keyed_by_exec_id_or_order_and_cumulative_quantity,
    write,
)
from tradebus.topics import ALERTS, BROKER_POSITIONS, DATA_TOPICS


@pytest.fixture
def store(pg_schema_url):
    with Store.open(pg_schema_url) as s:
        yield s


def test_migrations_apply_once_and_cover_every_writer_column(pg_schema_url):
    with Store.open(pg_schema_url) as s:
        assert s.applied_migrations() == [m.version for m in migrations("postgresql")]
        for name, table in TABLES.items():
            columns = {r["column_name"] for r in s.query(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                "AND table_schema = current_schema()", (name,))}
            assert set(table.columns) | {"stored_at"} <= columns, name
            if name in DECIMAL_COLUMNS:
                view = {r["column_name"] for r in s.query(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                    "AND table_schema = current_schema()", (f"{name}_numeric",))}
                assert columns | {f"{c}_num" for c in DECIMAL_COLUMNS[name]} == view, name
    with Store.open(pg_schema_url) as s:
        assert s.migrate() == []


def test_types_decimals_and_numeric_twins(store):
    write(store, *[(t, samples.BY_SCHEMA[t.value_schema]()) for t in [*DATA_TOPICS, ALERTS]])
    order = store.rows("orders_numeric")[0]
    assert order["filled_quantity"] == "40.000000001" and order["filled_quantity_num"] == Decimal("40.000000001")
    assert order["limit_price_num"] == Decimal("123.4500") and order["stop_price_num"] is None
    assert order["received_at"] == samples.T0 and order["upstream_protobuf"] == b"\x0a\x03o-1"
    assert store.rows("ideas")[0]["unknown_fields"] == {"RISK_SCORE": "3"}
    assert store.rows("alerts")[0]["deliveries"][0]["status"] == "delivered"
    # A decimal string that is not a plain number stays as text; its twin is NULL.
    write(store, (BROKER_POSITIONS, {**samples.broker_position(), "symbol": "X", "quantity": "n/a",
                                     "average_cost": "1e3"}))
    odd = store.rows("positions_numeric", where={"symbol": "X"})[0]
    assert (odd["quantity"], odd["quantity_num"], odd["average_cost_num"]) == ("n/a", None, Decimal("1E+3"))
