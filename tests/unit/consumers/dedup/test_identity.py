"""Identity per kind: what makes two records the same event."""

import hashlib
from datetime import timedelta

import pytest

from consumers.dedup.identity import KINDS, NoIdentityError, digest, trade_identity
from tests import samples
from tradebus.topics import BROKER_ORDERS, BROKER_POSITIONS, BROKER_TRADES, DATA_TOPICS, HTI_IDEAS, INTENT_ACTIONS


def identity(topic, record):
    return digest(KINDS[topic.name][1](record))


@pytest.mark.parametrize("topic", DATA_TOPICS, ids=lambda t: t.name)
def test_metadata_is_not_identity(topic):
    record = samples.BY_SCHEMA[topic.value_schema]()
    other = dict(record)
    other["metadata"] = {**record["metadata"], "producer_instance": "elsewhere", "replay": not record["metadata"]["replay"],
                         "received_at": record["metadata"]["received_at"] + timedelta(hours=1)}
    assert identity(topic, record) == identity(topic, other)


CHANGES = {
    HTI_IDEAS: [("idea_id", "x"), ("last_update_text", "2026-04-22 09:17:48 EST")],
    BROKER_ORDERS: [("order_id", "o-2"), ("command_seq", 2), ("order_status", "ORDER_STATUS_FILLED"),
                    ("filled_quantity", "40.000000002"), ("received_at", samples.T0 + timedelta(microseconds=1))],
    BROKER_POSITIONS: [("account_id", "a-2"), ("symbol", "MSFT"), ("received_at", samples.T0 + timedelta(microseconds=1))],
    BROKER_TRADES: [("exec_id", "e-2")],
    INTENT_ACTIONS: [("intent_id", "i-2"), ("seq", 2)],
}
SAME = {
    HTI_IDEAS: [("price", 1.0), ("last_update", samples.T0 + timedelta(days=1)), ("upstream_json", "{}")],
    BROKER_ORDERS: [("order_state", "ORDER_STATE_CLOSED"), ("average_price", "1"), ("upstream_protobuf", b"")],
    BROKER_POSITIONS: [("quantity", "41"), ("broker_sent_at", None)],
    BROKER_TRADES: [("order_id", "b-2"), ("cumulative_quantity", "41"), ("price", "1")],
    INTENT_ACTIONS: [("quantity", "1"), ("received_at", samples.T0 + timedelta(seconds=1))],
}


@pytest.mark.parametrize("topic,field,value", [(t, f, v) for t, changes in CHANGES.items() for f, v in changes],
                         ids=lambda x: getattr(x, "name", str(x)))
def test_identity_fields_make_a_different_event(topic, field, value):
    record = samples.BY_SCHEMA[topic.value_schema]()
    assert identity(topic, record) != identity(topic, {**record, field: value})


@pytest.mark.parametrize("topic,field,value", [(t, f, v) for t, same in SAME.items() for f, v in same],
                         ids=lambda x: getattr(x, "name", str(x)))
def test_other_fields_do_not(topic, field, value):
    record = samples.BY_SCHEMA[topic.value_schema]()
    assert identity(topic, record) == identity(topic, {**record, field: value})


def test_trade_without_exec_id_is_order_and_cumulative_quantity():
    trade = {**samples.broker_trade(), "exec_id": None}
    assert trade_identity(trade) == ("cumulative", "b-1", "40")
    assert trade_identity({**trade, "exec_id": ""}) == ("cumulative", "b-1", "40")  # protobuf's unset
    assert identity(BROKER_TRADES, trade) != identity(BROKER_TRADES, {**trade, "cumulative_quantity": "41"})
    assert identity(BROKER_TRADES, trade) == identity(BROKER_TRADES, {**trade, "price": "999"})
    with pytest.raises(NoIdentityError):
        trade_identity({**trade, "cumulative_quantity": None})


def test_digest_is_stable_across_versions():
    # Digests are persisted in the changelog: the canonical encoding must never change.
    # Parts joined by U+001F, datetimes as integer epoch microseconds, BLAKE2b-128.
    micros = 1776863867123456  # samples.T0
    text = "\x1f".join(["o-1", "1", "ORDER_STATUS_FILLED", "40", str(micros)]).encode()
    assert digest(("o-1", 1, "ORDER_STATUS_FILLED", "40", samples.T0)) == hashlib.blake2b(text, digest_size=16).digest()
    assert digest(("o-1", 1, "ORDER_STATUS_FILLED", "40", samples.T0)).hex() == "9997e651c8cf84b922c8f7dc4f5c3319"
    assert len(digest(("x",))) == 16
    assert digest(("a", None)) != digest(("a", "None"))
