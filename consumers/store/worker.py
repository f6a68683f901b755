"""`tradebus consume store`: the unique topics (and tradebus.alerts.v1) ->
SQLite or PostgreSQL.

Per batch (TRADEBUS_STORE_BATCH_SIZE records or TRADEBUS_STORE_FLUSH_MS after
the first): decode, turn into rows, upsert them all in one database
transaction, dead-letter what could not be decoded or stored (flushed to
Kafka), and only then commit the offsets, synchronously and explicitly. A
crash between the database commit and the offset commit replays the batch
into idempotent upserts: no loss, no double rows.

When the database refuses a batch's data (a constraint, a value it cannot
take) the batch is written again record by record, each in its own
transaction, so the one bad record goes to the DLQ instead of blocking its
partition. When the database is unreachable the batch is retried with
backoff (readiness goes false) until it comes back or shutdown gives up.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

from confluent_kafka import KafkaException, Message

from consumers.common import BatchWorker, DeadLetters, WorkerSettings, is_poison
from consumers.store.db import BadRowsError, DatabaseUnavailable, Store
from tradebus import metrics
from tradebus.config import CommonSettings, Env, database_url
from tradebus.kafka import PipelineProducer
from tradebus.redaction import redact, redact_url
from tradebus.serde import AvroRecordDeserializer, registry_client
from tradebus.topics import ALERTS, UNIQUE_TOPICS, TopicNames, by_name

log = logging.getLogger(__name__)

BATCH_SIZE = 5000
FLUSH_MS = 200
HTTP_PORT = 9412
CRASH_HOOK = "TRADEBUS_STORE_TEST_CRASH_AFTER_DB_COMMITS"


class RegistryUnavailable(RuntimeError):
    """Decoding failed for a reason that is not the record's (and we are stopping)."""


@dataclass(frozen=True)
class StoreSettings:
    worker: WorkerSettings
    database_url: str
    # Test hook: exit hard after this many database commits, before their
    # offset commit (proves the replay is idempotent). 0 = off.
    crash_after_db_commits: int = 0

    @classmethod
    def from_env(cls, env: Env) -> "StoreSettings":
        return cls(
            worker=WorkerSettings.from_env(env, "store", batch_size=BATCH_SIZE, flush_ms=FLUSH_MS),
            database_url=database_url(env),
            crash_after_db_commits=env.int(CRASH_HOOK, 0, min=0),
        )


class StoreWorker(BatchWorker):
    def __init__(self, common: CommonSettings, settings: StoreSettings, **kwargs):
        names = TopicNames(common.topic_prefix)
        sources = [*UNIQUE_TOPICS.values(), ALERTS]
        # Real topic name -> the registry name its rows are keyed by (the data topic for a unique topic).
        self.route_of = {names(t): (ALERTS.name if t is ALERTS else _data_topic_of(t.name)) for t in sources}
        super().__init__(common, settings.worker, list(self.route_of), **kwargs)
        self.store_settings = settings
        self.store: Store | None = None
        self.db_ok = False
        self.db_commits = 0
        self.dlq_producer: PipelineProducer | None = None

    def readiness_checks(self):
        return {**super().readiness_checks(), "database": lambda: self.db_ok}

    def setup(self) -> None:
        self.store = Store.open(self.store_settings.database_url)
        self.db_ok = True
        log.info("store: writing to %s (%s)", redact_url(self.store_settings.database_url), self.store.dialect)
        client = registry_client(self.common.kafka)
        self.decoders = {name: AvroRecordDeserializer(client, by_name(route).value_schema)
                         for name, route in self.route_of.items()}
        self.dead_letters = DeadLetters(self.common, "store")
        self.dlq_producer = PipelineProducer(self.common.kafka, f"{self.client_id}-dlq")

    # ------------------------------------------------------------------ batch
    def process(self, batch: list[Message]) -> None:
        rows = self.store.new_batch()
        decoded: list[tuple[Message, str, dict]] = []
        dead: list[tuple[Message, str, str, BaseException]] = []
        for msg in batch:
            route = self.route_of[msg.topic()]
            try:
                record = self._decode(msg)
            except RegistryUnavailable:
                raise  # shutting down during a registry outage: nothing is committed
            except Exception as exc:  # poison: goes to the DLQ, the partition moves on
                dead.append((msg, "decode", "undecodable", exc))
                continue
            try:
                rows.add_record(route, record)
            except Exception as exc:  # decoded, but without what its rows are keyed by
                dead.append((msg, "convert", "unstorable", exc))
                continue
            decoded.append((msg, route, record))

        started = time.perf_counter()
        try:
            changed = self._write(rows)
        except BadRowsError as exc:
            log.warning("store: the database refused a batch (%s); writing it record by record", redact(str(exc)))
            changed = self._write_one_by_one(decoded, dead)
        metrics.STORE_BATCH_SECONDS.observe(time.perf_counter() - started)
        for table, n in changed.items():
            metrics.STORE_ROWS.labels(table=table).inc(max(n, 0))

        if dead:
            for msg, stage, reason, exc in dead:
                value = self.dead_letters.encode(msg, stage=stage, reason=reason, error=exc, target_topic=None)
                self.dlq_producer.produce(self.dead_letters.topic, self.dead_letters.key, value)
            self.dlq_producer.flush(self.common.shutdown_timeout_s)  # durable before the offsets move on

        self.db_commits += 1
        if self.store_settings.crash_after_db_commits and self.db_commits >= self.store_settings.crash_after_db_commits:
            log.warning("store: %s reached: exiting after the database commit, before the offset commit", CRASH_HOOK)
            os._exit(86)
        try:
            self.commit_offsets(batch)
        except KafkaException as exc:
            # The rows are committed; a later commit (or the next owner's replay into
            # idempotent upserts) covers these offsets.
            metrics.WORKER_ERRORS.labels(worker="store", reason="offset_commit").inc()
            log.warning("store: offset commit failed, the batch may be replayed: %s", redact(str(exc)))

    def _decode(self, msg: Message) -> dict:
        """Decode; a registry outage is retried (never dead-lettered)."""
        delay = 0.5
        while True:
            try:
                return self.decoders[msg.topic()](msg.value())
            except Exception as exc:
                if is_poison(exc):
                    raise
                if self.stop.is_set():
                    raise RegistryUnavailable(redact(str(exc))) from exc
                log.warning("store: cannot decode (registry unavailable?), retrying in %.1fs: %s", delay, redact(str(exc)))
                self.health.beat()
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _write(self, rows) -> dict[str, int]:
        """Write one batch; while the database is unreachable, retry with backoff."""
        delay = 0.5
        give_up_at = None
        while True:
            try:
                changed = self.store.write(rows)
                self.db_ok = True
                return changed
            except DatabaseUnavailable as exc:
                self.db_ok = False
                metrics.WORKER_ERRORS.labels(worker="store", reason="database_unavailable").inc()
                log.warning("store: database unavailable, retrying in %.1fs: %s", delay, redact(str(exc)))
                if self.stop.is_set():
                    give_up_at = give_up_at or time.monotonic() + self.common.shutdown_timeout_s
                    if time.monotonic() > give_up_at:
                        raise
                self.health.beat()
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
                try:
                    self.store.reconnect()
                except Exception as reconnect_exc:
                    log.warning("store: reconnect failed: %s", redact(str(reconnect_exc)))

    def _write_one_by_one(self, decoded, dead) -> dict[str, int]:
        changed: dict[str, int] = {}
        for msg, route, record in decoded:
            single = self.store.new_batch()
            single.add_record(route, record)
            try:
                for table, n in self._write(single).items():
                    changed[table] = changed.get(table, 0) + n
            except BadRowsError as exc:
                dead.append((msg, "store", "rejected_by_database", exc))
        return changed

    def teardown(self) -> None:
        try:
            if self.dlq_producer is not None:
                self.dlq_producer.flush(self.common.shutdown_timeout_s)
        finally:
            if self.store is not None:
                self.store.close()


def _data_topic_of(unique_name: str) -> str:
    for data_name, unique in UNIQUE_TOPICS.items():
        if unique.name == unique_name:
            return data_name
    raise KeyError(unique_name)

