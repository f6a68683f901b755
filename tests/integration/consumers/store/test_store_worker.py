"""The store worker against real Kafka and a real database (PostgreSQL in a
schema of its own, and SQLite): rows for every table, duplicates at the input
give one row, poison goes to the DLQ while the partition moves on."""

from __future__ import annotations

from decimal import Decimal

from confluent_kafka import Producer

from consumers.store import Store
from consumers.store.worker import StoreSettings, StoreWorker
from tests import samples
from tests.integration.consumers.dedup.helpers import (
    ThreadedWorker, as_duplicate, committed_to_end, distinct_records, names, read_topic, wait_until,
)
from tradebus.config import Env
from tradebus.publishing import Publisher
from tradebus.topics import ALERTS, BROKER_ORDERS, DLQ, UNIQUE_TOPICS

STORE_INPUTS = [*UNIQUE_TOPICS.values(), ALERTS]


def store_worker(common, database_url, **env):
    settings = StoreSettings.from_env(Env({
        "TRADEBUS_STORE_GROUP": f"{common.topic_prefix}tradebus-store", "TRADEBUS_STORE_BATCH_SIZE": "50",
        "TRADEBUS_STORE_FLUSH_MS": "50", "TRADEBUS_DATABASE_URL": database_url, **env,
    }))
    return StoreWorker(common, settings)


def publish_unique(common, items):
    """Publish (data topic, key, record) items to the matching unique topics."""
    publisher = Publisher(common, "it", STORE_INPUTS)
    for topic, key, record in items:
        publisher.publish(UNIQUE_TOPICS.get(topic.name, topic), key, record)
    publisher.flush(30)


def test_rows_for_every_table_duplicates_and_poison(common, topics, database_url):
    items = [item for i in range(10) for item in distinct_records(i)]
    items.append((ALERTS, "big-fill:o-1", samples.alert()))
    # Duplicates at the input (a dedup replay): the same events again.
    publish_unique(common, items + [(t, k, as_duplicate(r, 1)) if t is not ALERTS else (t, k, r) for t, k, r in items])
    orders_unique = names(common)(UNIQUE_TOPICS[BROKER_ORDERS.name])
    producer = Producer(common.kafka.client_conf())
    producer.produce(orders_unique, b"\x00\x00\x00\x00\x01garbage", b"o-1", partition=0)
    producer.flush(10)
    late = distinct_records(99)
    publish_unique(common, late)  # after the poison: the partition must move on

    group = f"{common.topic_prefix}tradebus-store"
    with ThreadedWorker(store_worker(common, database_url)) as run:
        wait_until(lambda: committed_to_end(common, group, STORE_INPUTS), 60, message="the store to catch up")
        assert run.stop() == 0

    with Store.open(database_url) as store:
        counts = {t: store.count(t) for t in
                  ("idea_versions", "ideas", "order_events", "orders", "positions", "trades", "intent_actions", "alerts")}
        assert counts == {"idea_versions": 11, "ideas": 11, "order_events": 11, "orders": 11, "positions": 10,
                          "trades": 11, "intent_actions": 11, "alerts": 1}
        order = store.rows("order_events", where={"order_id": "o-19", "command_seq": 99})[0]
        assert order["filled_quantity"] == "40.000000001" and order["limit_price"] == "123.4500"
        assert order["producer_instance"] == "test-1"  # the first copy's row stays
        trades = {r["trade_key"] for r in store.rows("trades")}
        assert "exec|e-0" in trades and "cumulative|b-1|1" in trades
        if store.dialect == "postgresql":
            numeric = store.rows("order_events_numeric", where={"order_id": "o-19", "command_seq": 99})[0]
            assert numeric["filled_quantity_num"] == Decimal("40.000000001")
            assert order["received_at"] == samples.T0.replace(microsecond=samples.T0.microsecond + 99)
        else:
            assert order["received_at"] == "2026-04-22T13:17:47.123555+00:00"
        alert = store.rows("alerts")[0]
        assert alert["rule"] == "big-fill" and alert["alert_key"] == "big-fill:o-1"

    dead = read_topic(common, names(common)(DLQ))
    assert len(dead) == 1
    letter = dead[0]["value"]
    assert letter["source"] == "store" and letter["details"]["topic"] == orders_unique
    assert letter["payload"] == b"\x00\x00\x00\x00\x01garbage"
