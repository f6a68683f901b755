"""`tradebus consume dedup` as a real process, made to exit inside an open
transaction (test hook), then killed with SIGKILL at random moments while it
works, several times, and restarted: the unique topics, read with
read_committed, hold each distinct event exactly once. A final SIGTERM
finishes, commits and exits 0."""

from __future__ import annotations

import random
import signal
import time

from confluent_kafka import Consumer, TopicPartition

from consumers.dedup.identity import KINDS
from consumers.dedup.worker import CRASH_HOOK
from tests.integration.consumers.dedup.helpers import (
    as_duplicate, committed_to_end, distinct_records, log_on_failure, names, publish, read_topic, start_cli,
    wait_until,
)
from tradebus.topics import DATA_TOPICS, DEDUP_STATE, UNIQUE_TOPICS


def changelog_high_watermark(common) -> int:
    """Records written to the changelog, committed or not (read_uncommitted)."""
    topic = names(common)(DEDUP_STATE)
    consumer = Consumer({**common.kafka.client_conf(), "group.id": "it-hwm", "isolation.level": "read_uncommitted"})
    try:
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in range(DEDUP_STATE.partitions))
    finally:
        consumer.close()


def test_sigkill_at_random_moments_then_restart_leaves_each_event_exactly_once(common, topics, tmp_path):
    rng = random.Random(5)
    group = f"{common.topic_prefix}tradebus-dedup"
    env = {
        "TRADEBUS_TOPIC_PREFIX": common.topic_prefix, "TRADEBUS_INSTANCE_ID": "it-kill", "TRADEBUS_HTTP_PORT": "0",
        "TRADEBUS_DEDUP_GROUP": group, "TRADEBUS_DEDUP_BATCH_SIZE": "100", "TRADEBUS_DEDUP_FLUSH_MS": "10",
        "TRADEBUS_KAFKA_LINGER_MS": "1", "TRADEBUS_DEDUP_SESSION_TIMEOUT_MS": "6000",
    }
    expected = {t.name: set() for t in DATA_TOPICS}
    sent: list[tuple] = []

    def feed(start: int, count: int, duplicates_of: int) -> None:
        fresh = [item for i in range(start, start + count) for item in distinct_records(i)]
        for topic, _, record in fresh:
            expected[topic.name].add(KINDS[topic.name][1](record))
        old = rng.sample(sent, min(duplicates_of, len(sent)))
        items = fresh + [(t, k, as_duplicate(r, rng.randint(1, 9))) for t, k, r in fresh + old]
        rng.shuffle(items)  # duplicates before and after their originals, across partitions
        publish(common, items)
        sent.extend(fresh)

    feed(0, 600, 0)  # 3,000 distinct events, 6,000 records
    log = tmp_path / "dedup.log"
    with log_on_failure(log):
        # First a deterministic crash inside a transaction whose records are on the broker.
        worker = start_cli(["consume", "dedup"], {**env, CRASH_HOOK: "3"}, log)
        assert worker.wait(60) == 86
        kills = 0
        for round_ in range(4):
            before = changelog_high_watermark(common)
            worker = start_cli(["consume", "dedup"], env, log)
            try:
                # Kill once the worker is writing: some records of an open transaction are on the broker.
                threshold = before + rng.randint(1, 400)
                wait_until(lambda: changelog_high_watermark(common) >= threshold or worker.poll() is not None, 60,
                           interval=0.05, message="the worker to write")
                time.sleep(rng.uniform(0, 0.3))
                assert worker.poll() is None, "worker exited early"
            finally:
                worker.send_signal(signal.SIGKILL)
                worker.wait(10)
            kills += 1
            feed(10_000 * (round_ + 1), 100, 300)  # new events and old duplicates while it is down

        worker = start_cli(["consume", "dedup"], env, log)
        try:
            wait_until(lambda: committed_to_end(common, group), 120, interval=1.0, message="the worker to catch up")
        finally:
            worker.send_signal(signal.SIGTERM)
            rc = worker.wait(60)
        assert rc == 0
        assert kills == 4

    total = 0
    for topic in DATA_TOPICS:
        identity = KINDS[topic.name][1]
        seen = [identity(r["value"]) for r in read_topic(common, names(common)(UNIQUE_TOPICS[topic.name]))]
        duplicates = len(seen) - len(set(seen))
        assert duplicates == 0, f"{duplicates} duplicates in the unique topic of {topic.name}"
        assert set(seen) == expected[topic.name], f"missing or extra events in the unique topic of {topic.name}"
        total += len(seen)
    assert total == 3000 + 4 * 500

    # A crash did land inside a transaction: the changelog holds aborted records.
    changelog = names(common)(DEDUP_STATE)
    committed = len(read_topic(common, changelog, decode=False))
    everything = len(read_topic(common, changelog, decode=False, isolation="read_uncommitted"))
    assert committed == total and everything > committed
