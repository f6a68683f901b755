"""The store's SQL on SQLite in a temp dir: migrations, rows for every table,
idempotent replay, current-state rules, bad URLs."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

from consumers.store.db import Store, migrations
from consumers.store.sqlite import split_statements
from consumers.store.tables import TABLES
from tests import samples
from tradebus.config import ConfigError
from tradebus.topics import ALERTS, BROKER_ORDERS, BROKER_POSITIONS, BROKER_TRADES, DATA_TOPICS, HTI_IDEAS, INTENT_ACTIONS


@pytest.fixture
def store(tmp_path):
    with Store.open(f"sqlite:///{tmp_path}/store.db") as s:
        yield s


def write(store, *items):
    batch = store.new_batch()
    for topic, record in items:
        batch.add_record(topic.name, record)
    return store.write(batch)


def snapshot(store):
    """Every row of every table, without the write time."""
    return {name: sorted(tuple(sorted((k, v) for k, v in row.items() if k != "stored_at")) for row in store.rows(name))
            for name in TABLES}


def test_migrations_apply_once_and_cover_every_writer_column(tmp_path):
    url = f"sqlite:///{tmp_path}/m.db"
    with Store.open(url) as s:
        assert s.applied_migrations() == [m.version for m in migrations("sqlite")]
        for name, table in TABLES.items():
            columns = {r["name"] for r in s.query(f"PRAGMA table_info({name})")}
            assert set(table.columns) | {"stored_at"} <= columns, name
    with Store.open(url) as s:  # a second start applies nothing new
        assert s.migrate() == []
    conn = sqlite3.connect(f"{tmp_path}/m.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_every_table_from_the_sample_records(store):
    write(store, *[(t, samples.BY_SCHEMA[t.value_schema]()) for t in [*DATA_TOPICS, ALERTS]])
    assert {name: store.count(name) for name in TABLES} == {name: 1 for name in TABLES}

    idea = samples.hti_idea()
    for table in ("ideas", "idea_versions"):
        row = store.rows(table)[0]
        assert row["idea_id"] == idea["idea_id"] and row["last_update_text"] == idea["last_update_text"]
        assert row["last_update"] == "2026-04-22T13:17:47.000000+00:00"
        assert row["price"] == 437.9699 and row["confidence"] == 0.9 and row["description"] == "two\nlines"
        assert row["unknown_fields"] == '{"RISK_SCORE":"3"}' and row["upstream_json"] == idea["upstream_json"]
        assert row["ingested_at"] == "2026-04-22T13:17:47.123456+00:00" and row["producer_instance"] == "test-1"
        assert row["replay"] == 0

    for table in ("orders", "order_events"):
        row = store.rows(table)[0]
        assert row["filled_quantity"] == "40.000000001" and row["limit_price"] == "123.4500"  # exact text
        assert row["quantity"] == "100" and row["stop_price"] is None and row["command_seq"] == 1
        assert row["received_at"] == "2026-04-22T13:17:47.123456+00:00"
        assert (row["instrument_kind"], row["instrument_symbol"], row["instrument_exchange"]) == ("equity", "AAPL", "XNAS")
        assert row["upstream_protobuf"] == b"\x0a\x03o-1"

    position = store.rows("positions")[0]
    assert (position["account_id"], position["symbol"], position["quantity"]) == ("a-1", "AAPL", "40")
    assert position["realized_pnl"] == "-1.50" and position["daily_pnl"] is None and position["instrument_kind"] is None
    assert position["replay"] == 1

    trade = store.rows("trades")[0]
    assert trade["trade_key"] == "exec|e-1" and trade["exec_id"] == "e-1" and trade["price"] == "123.44"
    assert trade["leaves_quantity"] == "60"

    intent = store.rows("intent_actions")[0]
    assert (intent["intent_id"], intent["seq"], intent["quantity"], intent["time_in_force"]) == ("i-1", 1, "100", None)

    alert = store.rows("alerts")[0]
    assert alert["alert_id"] == "al-1" and alert["fired_at"] == "2026-04-22T13:17:47.123456+00:00"
    assert alert["deliveries"] == '[{"attempts":1,"error":null,"sink":"log","status":"delivered"}]'


def test_replaying_a_batch_changes_nothing(store):
    items = []
    for i in range(20):
        order = {**samples.broker_order(), "order_id": f"o-{i % 3}", "command_seq": i}
        idea = {**samples.hti_idea(), "last_update_text": f"v{i}", "last_update": samples.T0 + timedelta(seconds=i % 7)}
        trade = {**samples.broker_trade(), "exec_id": None, "cumulative_quantity": str(i)}
        items += [(BROKER_ORDERS, order), (HTI_IDEAS, idea), (BROKER_TRADES, trade)]
    items.append((ALERTS, samples.alert()))
    write(store, *items)
    first = snapshot(store)
    changed = write(store, *items)
    assert snapshot(store) == first
    assert {k: v for k, v in changed.items() if k != "alerts"} == {
        "order_events": 0, "orders": 0, "idea_versions": 0, "ideas": 0, "trades": 0,
    }
    assert store.count("order_events") == 20 and store.count("orders") == 3 and store.count("trades") == 20


def order(seq, received_delta_us, status="ORDER_STATUS_NEW"):
    return {**samples.broker_order(), "command_seq": seq, "order_status": status,
            "received_at": samples.T0 + timedelta(microseconds=received_delta_us)}


@pytest.mark.parametrize("together", [True, False], ids=["one batch", "separate batches"])
def test_current_state_is_the_newest_whatever_the_arrival_order(store, together):
    versions = [order(1, 0), order(3, 5, "ORDER_STATUS_FILLED"), order(2, 5), order(9, 4)]
    ideas = [{**samples.hti_idea(), "last_update_text": t, "last_update": samples.T0 + timedelta(seconds=s)}
             for t, s in (("b", 2), ("c", 3), ("a", 1))]
    positions = [{**samples.broker_position(), "quantity": q, "received_at": samples.T0 + timedelta(seconds=s)}
                 for q, s in (("10", 5), ("99", 1))]
    items = [(BROKER_ORDERS, o) for o in versions] + [(HTI_IDEAS, i) for i in ideas] + \
            [(BROKER_POSITIONS, p) for p in positions]
    if together:
        write(store, *items)
    else:
        for item in items:
            write(store, item)
    current = store.rows("orders")[0]
    # Newest received_at (5us) wins; between the two at 5us, the higher command_seq.
    assert (current["command_seq"], current["order_status"]) == (3, "ORDER_STATUS_FILLED")
    assert store.count("order_events") == 4
    assert store.rows("ideas")[0]["last_update_text"] == "c" and store.count("idea_versions") == 3
    assert store.rows("positions")[0]["quantity"] == "10"


def test_alerts_take_the_latest_delivery_status(store):
    failed = {**samples.alert(), "deliveries": [{"sink": "webhook", "status": "failed", "attempts": 3, "error": "503"}]}
    write(store, (ALERTS, failed))
    write(store, (ALERTS, samples.alert()))
    assert '"delivered"' in store.rows("alerts")[0]["deliveries"] and store.count("alerts") == 1


def test_trades_keyed_by_exec_id_or_order_and_cumulative_quantity(store):
    with_exec = samples.broker_trade()
    without = [{**samples.broker_trade(), "exec_id": None, "cumulative_quantity": q} for q in ("40", "100", "40")]
    write(store, (BROKER_TRADES, with_exec), *[(BROKER_TRADES, t) for t in without])
    assert [r["trade_key"] for r in store.rows("trades", order_by="trade_key")] == \
        ["cumulative|b-1|100", "cumulative|b-1|40", "exec|e-1"]
    assert store.rows("trades", where={"trade_key": "cumulative|b-1|40"})[0]["exec_id"] is None


def test_intent_actions_keyed_by_intent_and_seq(store):
    write(store, *[(INTENT_ACTIONS, {**samples.intent_action(), "seq": s}) for s in (1, 2, 2, 3)])
    assert [r["seq"] for r in store.rows("intent_actions", order_by="seq")] == [1, 2, 3]


def test_read_helpers_refuse_unknown_names(store):
    with pytest.raises(ValueError, match="unknown table"):
        store.rows("orders; DROP TABLE orders")
    with pytest.raises(ValueError, match="unknown column"):
        store.rows("orders", where={"1=1 OR order_id": "x"})


@pytest.mark.parametrize("url,expected", [
    ("mysql://u:p@h/db", "expected sqlite:///PATH or postgresql://"),
    ("sqlite:///no/such/dir/x.db", "TRADEBUS_DATABASE_URL: cannot open"),
    ("postgresql://tradebus:hunter2pw@127.0.0.1:1/tradebus?connect_timeout=1", "TRADEBUS_DATABASE_URL: cannot open"),
])
def test_bad_urls_fail_naming_the_setting_without_the_password(url, expected):
    with pytest.raises(ConfigError) as info:
        Store.open(url)
    assert expected in str(info.value) and "hunter2pw" not in str(info.value)


def test_migration_statements_are_split_whole():
    sql = "-- c\nCREATE TABLE a (x TEXT DEFAULT (';'));\n\nCREATE INDEX i ON a (x);\n"
    assert split_statements(sql) == ["CREATE TABLE a (x TEXT DEFAULT (';'));", "CREATE INDEX i ON a (x);"]


def test_sqlite_timestamps_are_fixed_width_utc():
    from datetime import datetime, timezone

    from consumers.store.rows import iso_utc

    assert iso_utc(datetime(2026, 4, 22, 13, 17, 47, tzinfo=timezone.utc)) == "2026-04-22T13:17:47.000000+00:00"
    est = timezone(timedelta(hours=-5))
    assert iso_utc(datetime(2026, 4, 22, 8, 17, 47, 5, tzinfo=est)) == "2026-04-22T13:17:47.000005+00:00"
    assert iso_utc(None) is None
