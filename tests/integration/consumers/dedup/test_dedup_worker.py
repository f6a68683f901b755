"""The dedup worker against the real stack: duplicates injected at the input
leave exactly one event per identity at the output; state survives a restart;
poison goes to the DLQ while the partition moves on."""

from __future__ import annotations

import time

from confluent_kafka import Producer

from consumers.dedup.identity import KINDS
from consumers.dedup.worker import DedupSettings, DedupWorker
from tests.integration.consumers.dedup.helpers import (
    ThreadedWorker, as_duplicate, committed_to_end, count_topics, distinct_records, names, publish, read_topic,
    wait_until,
)
from tradebus.config import Env
from tradebus.topics import BROKER_ORDERS, DATA_TOPICS, DEDUP_STATE, DLQ, UNIQUE_TOPICS


def dedup_worker(common, **env):
    settings = DedupSettings.from_env(Env({
        "TRADEBUS_DEDUP_GROUP": f"{common.topic_prefix}tradebus-dedup", "TRADEBUS_DEDUP_BATCH_SIZE": "100",
        "TRADEBUS_DEDUP_FLUSH_MS": "20", **env,
    }))
    return DedupWorker(common, settings)


def unique_names(common):
    return [names(common)(UNIQUE_TOPICS[t.name]) for t in DATA_TOPICS]


def assert_exactly_once(common, expected_per_topic: dict[str, set]):
    for topic in DATA_TOPICS:
        identity = KINDS[topic.name][1]
        out = read_topic(common, names(common)(UNIQUE_TOPICS[topic.name]))
        seen = [identity(r["value"]) for r in out]
        assert len(seen) == len(set(seen)), f"duplicates in the unique topic of {topic.name}"
        assert set(seen) == expected_per_topic[topic.name], f"missing or extra identities for {topic.name}"


def test_duplicates_leave_one_event_each_and_state_survives_restart(common, topics):
    first = [item for i in range(40) for item in distinct_records(i)]
    expected = {t.name: set() for t in DATA_TOPICS}
    for topic, _, record in first:
        expected[topic.name].add(KINDS[topic.name][1](record))
    # Each event three times: original, a replay copy, and another producer's copy, interleaved.
    publish(common, first + [(t, k, as_duplicate(r, 1)) for t, k, r in first])
    # A poison record in the middle of a partition, then more data after it.
    orders = names(common)(BROKER_ORDERS)
    producer = Producer(common.kafka.client_conf())
    producer.produce(orders, b"not avro at all", b"o-1", partition=0)
    producer.flush(10)
    publish(common, [(t, k, as_duplicate(r, 2)) for t, k, r in first])

    with ThreadedWorker(dedup_worker(common)) as run:
        wait_until(lambda: count_topics(common, unique_names(common)) >= 200, 60, message="200 unique events")
        wait_until(lambda: len(read_topic(common, names(common)(DLQ))) >= 1, 30, message="the poison in the DLQ")
        assert run.stop() == 0
    assert_exactly_once(common, expected)

    dead = read_topic(common, names(common)(DLQ))
    assert len(dead) == 1
    letter = dead[0]["value"]
    assert letter["source"] == "dedup" and letter["payload"] == b"not avro at all"
    assert letter["details"]["topic"] == orders and letter["details"]["partition"] == "0"
    assert letter["details"]["reason_code"] == "undecodable"

    # Same bytes out as in: the first copy of each event, framing unchanged.
    out_orders = read_topic(common, names(common)(UNIQUE_TOPICS[BROKER_ORDERS.name]))
    assert all(r["value"]["metadata"]["producer_instance"] == "test-1" for r in out_orders)

    # Offsets were committed with the transactions: nothing left for the group.
    assert committed_to_end(common, f"{common.topic_prefix}tradebus-dedup")

    # The changelog holds one entry per identity; after a restart the state is
    # rebuilt from it: old duplicates stay out, new events go through.
    assert len(read_topic(common, names(common)(DEDUP_STATE), decode=False)) == 200
    fresh = [item for i in range(1000, 1002) for item in distinct_records(i)]
    for topic, _, record in fresh:
        expected[topic.name].add(KINDS[topic.name][1](record))
    publish(common, [(t, k, as_duplicate(r, 3)) for t, k, r in first] + fresh)
    with ThreadedWorker(dedup_worker(common)) as run:
        wait_until(lambda: count_topics(common, unique_names(common)) >= 210, 60, message="210 unique events")
        # Give it the time to (wrongly) let old duplicates through.
        wait_until(lambda: committed_to_end(common, run.worker.settings.group), 30, message="the group to catch up")
        assert run.stop() == 0
    assert_exactly_once(common, expected)


def test_identities_are_forgotten_after_the_window(common, topics):
    """Bounded state: an identity older than the window is evicted (tombstoned
    in the changelog) and a later copy passes again; inside the window it does not."""
    first = distinct_records(0)
    publish(common, first)
    unique = unique_names(common)
    with ThreadedWorker(dedup_worker(common, TRADEBUS_DEDUP_WINDOW_SECONDS="8")) as run:
        wait_until(lambda: count_topics(common, unique) == 5, 30, message="the first five events")
        publish(common, [(t, k, as_duplicate(r, 1)) for t, k, r in first])  # inside the window: dropped
        wait_until(lambda: committed_to_end(common, run.worker.settings.group), 30, message="the copies consumed")
        assert count_topics(common, unique) == 5
        time.sleep(8.5)  # the window is wide enough that a loaded machine still handles the copies inside it
        publish(common, [(t, k, as_duplicate(r, 2)) for t, k, r in first])  # after the window: new again
        wait_until(lambda: count_topics(common, unique) == 10, 30, message="the late copies")
        assert run.stop() == 0
    changelog = read_topic(common, names(common)(DEDUP_STATE), decode=False)
    assert sum(1 for r in changelog if r["raw"] is None) == 5  # the evictions, as tombstones
    assert sum(1 for r in changelog if r["raw"] is not None) == 10
