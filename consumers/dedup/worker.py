"""`tradebus consume dedup`: data topics -> *.unique.v1, each distinct event
exactly once, with Kafka transactions.

Per batch, one transaction holds: the output records (same key, same value
bytes as the input: the unique subjects are registered with the same schema,
so the Confluent framing stays valid), the changelog entries of the newly
seen identities (see state.py), dead letters for undecodable input, and the
input offsets (``send_offsets_to_transaction`` with the consumer's group
metadata). Either all of it becomes visible to read_committed readers or none
of it does; a SIGKILL at any point leaves an open transaction that is aborted
when the restarted process calls ``init_transactions`` (same transactional id)
or when it times out.

Fencing: the transactional id is stable per instance
(``<group>-<topic prefix><instance id>``, so ``tradebus-dedup-<instance>`` in
production). A restarted instance fences its previous incarnation. Zombies
from *another* instance (one that lost its partitions but does not know yet)
are fenced by the group generation in ``send_offsets_to_transaction``
(KIP-447), which lets one producer per process serve any partitions, so the
shared cooperative-sticky assignment is kept: before partitions are revoked
the pending batch's transaction is committed (the shared loop flushes it), and
newly assigned partitions have their state rebuilt only after their committed
offsets are stable.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition

from consumers.common import BatchWorker, DeadLetters, WorkerSettings, is_poison, next_offsets
from consumers.dedup.identity import KINDS, NoIdentityError, digest
from consumers.dedup.state import DedupState, changelog_key, read_changelog
from tradebus import metrics
from tradebus.config import CommonSettings, ConfigError, Env
from tradebus.kafka import producer_conf
from tradebus.redaction import redact
from tradebus.serde import AvroRecordDeserializer, register_schema, registry_client
from tradebus.topics import DATA_TOPICS, DEDUP_STATE, UNIQUE_TOPICS, TopicNames

log = logging.getLogger(__name__)

BATCH_SIZE = 5000
FLUSH_MS = 50
HTTP_PORT = 9411
TRANSACTION_TIMEOUT_MS = 60_000
# A transaction begun right after the previous commit finds the coordinator
# still writing that commit's markers (CONCURRENT_TRANSACTIONS) and is retried
# after retry.backoff.ms: librdkafka's 100 ms default added ~100 ms to every
# transaction (the Java client retries this case after 20 ms). Backoff still
# grows exponentially to retry.backoff.max.ms (1 s) when a broker is down.
RETRY_BACKOFF_MS = 10
# A producer that failed fatally is replaced, but not more often than this:
# repeated fencing means another live process shares our transactional id.
MAX_PRODUCER_REPLACEMENTS = 3
PRODUCER_REPLACEMENT_WINDOW_S = 600
CRASH_HOOK = "TRADEBUS_DEDUP_TEST_CRASH_IN_TRANSACTION"


class TransientError(RuntimeError):
    """Not the record's fault (the registry is unreachable): retry the batch."""


@dataclass(frozen=True)
class DedupSettings:
    worker: WorkerSettings
    window_s: int  # an identity is remembered this long after it was first seen
    max_entries: int  # and at most this many identities per process (oldest go first)
    # Test hook: in this many-th transaction, exit hard once its records are on
    # the broker but before the offsets and the commit. 0 = off.
    crash_in_transaction: int = 0

    @classmethod
    def from_env(cls, env: Env) -> "DedupSettings":
        return cls(
            worker=WorkerSettings.from_env(env, "dedup", batch_size=BATCH_SIZE, flush_ms=FLUSH_MS),
            window_s=env.int("TRADEBUS_DEDUP_WINDOW_SECONDS", 86400, min=1),
            max_entries=env.int("TRADEBUS_DEDUP_MAX_ENTRIES", 5_000_000, min=1),
            crash_in_transaction=env.int(CRASH_HOOK, 0, min=0),
        )


@dataclass
class Route:
    kind: str
    output: str  # the unique topic's real name
    decode: Callable[[bytes], dict]
    identity: Callable[[dict], tuple]
    keep_partition: bool = True  # output partition = input partition when the counts match


class DedupWorker(BatchWorker):
    def __init__(self, common: CommonSettings, settings: DedupSettings, **kwargs):
        self.names = TopicNames(common.topic_prefix)
        super().__init__(common, settings.worker, [self.names(t) for t in DATA_TOPICS], **kwargs)
        self.dedup = settings
        self.state = DedupState(settings.window_s * 1000, settings.max_entries)
        self.changelog = self.names(DEDUP_STATE)
        self.transactional_id = f"{settings.worker.group}-{common.topic_prefix}{common.instance_id}"
        self.routes: dict[str, Route] = {}
        self.producer: Producer | None = None
        self.changelog_partitions = 0
        self.transactions = 0
        self._replacements: list[float] = []  # when the transactional producer was replaced (monotonic)

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        client = registry_client(self.common.kafka)
        for topic in DATA_TOPICS:
            unique = UNIQUE_TOPICS[topic.name]
            # Same schema under the unique subject: the input's framed bytes pass through unchanged.
            register_schema(client, self.names.value_subject(unique), topic.value_schema)
            kind, identity = KINDS[topic.name]
            self.routes[self.names(topic)] = Route(kind, self.names(unique),
                                                   AvroRecordDeserializer(client, topic.value_schema), identity)
        self.dead_letters = DeadLetters(self.common, "dedup")
        self.producer = self._transactional_producer()
        self._check_topics()
        # Fences our previous incarnation and aborts its open transaction, if any.
        self.producer.init_transactions(self.common.shutdown_timeout_s + 30)

    def _transactional_producer(self) -> Producer:
        return Producer(producer_conf(
            self.common.kafka, self.client_id,
            **{"transactional.id": self.transactional_id, "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
               "message.timeout.ms": TRANSACTION_TIMEOUT_MS - 5000, "retry.backoff.ms": RETRY_BACKOFF_MS},
        ))

    def _check_topics(self) -> None:
        try:
            meta = self.producer.list_topics(timeout=10).topics
        except KafkaException as exc:
            raise ConfigError(f"TRADEBUS_KAFKA_BOOTSTRAP_SERVERS: Kafka unreachable ({redact(str(exc))})") from None
        missing = [t for t in [self.changelog, *self.routes, *(r.output for r in self.routes.values())]
                   if t not in meta or meta[t].error is not None]
        if missing:
            raise ConfigError(f"TRADEBUS_TOPIC_PREFIX: topics missing ({', '.join(missing)}); run `tradebus topics create`")
        self.changelog_partitions = len(meta[self.changelog].partitions)
        for name, route in self.routes.items():
            route.keep_partition = len(meta[route.output].partitions) == len(meta[name].partitions)

    # -------------------------------------------------------------- rebalance
    def on_assigned(self, partitions: list[TopicPartition]) -> None:
        if not partitions:
            return
        # Under read_committed this OffsetFetch waits for pending transactional
        # offset commits (KIP-447): the previous owner's last transaction is
        # settled before we read the changelog.
        self.consumer.committed(partitions, timeout=TRANSACTION_TIMEOUT_MS / 1000 + 30)
        wanted = {(self.routes[tp.topic].kind, tp.partition) for tp in partitions}
        started = time.monotonic()
        now_ms = int(time.time() * 1000)
        entries = read_changelog(self.common.kafka, self.changelog, wanted, self.changelog_partitions,
                                 now_ms - self.state.window_ms, timeout_s=TRANSACTION_TIMEOUT_MS / 1000 + 30)
        loaded = sum(self.state.load(key, found, now_ms) for key, found in entries.items())
        log.info("dedup state for %d partitions: %d identities in %.1fs", len(wanted), loaded, time.monotonic() - started)

    def on_revoked(self, partitions: list[TopicPartition]) -> None:
        self.state.drop({(self.routes[tp.topic].kind, tp.partition) for tp in partitions if tp.topic in self.routes})

    on_lost = on_revoked

    # ------------------------------------------------------------------ batch
    def process(self, batch: list[Message]) -> None:
        now_ms = int(time.time() * 1000)
        now_value = str(now_ms).encode()
        added = []  # (partition state, digest): undone if the transaction fails
        written: Counter = Counter()
        dropped: Counter = Counter()
        state, changelog, n_changelog = self.state, self.changelog, self.changelog_partitions
        produce = self._produce
        self.producer.begin_transaction()
        try:
            for key, digest_ in state.evict(now_ms):
                produce(changelog, changelog_key(key[0], key[1], digest_), None, key[1] % n_changelog)
            for msg in batch:
                route = self.routes[msg.topic()]
                value = msg.value()
                try:
                    identity = digest(route.identity(route.decode(value)))
                except Exception as exc:  # poison: undecodable or without identity
                    if not is_poison(exc):
                        raise TransientError(f"decoding {msg.topic()}: {type(exc).__name__}") from exc
                    reason = "no_identity" if isinstance(exc, NoIdentityError) else "undecodable"
                    dead = self.dead_letters.encode(msg, stage="decode", reason=reason, error=exc, target_topic=route.output)
                    produce(self.dead_letters.topic, self.dead_letters.key, dead, -1)
                    continue
                partition = msg.partition()
                seen = state.partition((route.kind, partition))
                if identity in seen:
                    dropped[route.kind] += 1
                    continue
                state.add(seen, identity, now_ms)
                added.append((seen, identity))
                produce(route.output, msg.key(), value, partition if route.keep_partition else -1)
                produce(changelog, changelog_key(route.kind, partition, identity), now_value, partition % n_changelog)
                written[route.output] += 1
            self.transactions += 1
            if self.transactions == self.dedup.crash_in_transaction:
                self.producer.flush(30)  # the open transaction's records reach the broker
                log.warning("dedup: %s reached: exiting inside an open transaction", CRASH_HOOK)
                os._exit(86)
            self.producer.send_offsets_to_transaction(next_offsets(batch), self.consumer.consumer_group_metadata(),
                                                      self.common.shutdown_timeout_s)
            self._commit()
        except BaseException as exc:
            for seen, identity in added:
                state.discard(seen, identity)
            self._abort(batch, exc)
            return
        for kind, n in dropped.items():
            metrics.DEDUP_DROPPED.labels(kind=kind).inc(n)
        for topic, n in written.items():
            metrics.PRODUCED.labels(topic=topic).inc(n)

    def _produce(self, topic: str, key: bytes | None, value: bytes | None, partition: int) -> None:
        while True:
            try:
                self.producer.produce(topic, value, key, partition)
                return
            except BufferError:  # queue full: let deliveries drain
                metrics.BACKPRESSURE_WAITS.inc()
                self.producer.poll(0.01)

    def _commit(self) -> None:
        for attempt in range(5):
            try:
                self.producer.commit_transaction(self.common.shutdown_timeout_s)
                return
            except KafkaException as exc:
                err: KafkaError = exc.args[0]
                if err.retriable() and attempt < 4:
                    log.warning("dedup: commit_transaction retriable error, retrying: %s", redact(str(err)))
                    continue
                raise

    def _abort(self, batch: list[Message], exc: BaseException) -> None:
        """Abort the transaction and rewind, so the batch is consumed again.

        A fatal producer error leaves the producer unusable; it is replaced
        (see :meth:`_replace_producer`) unless that happens too often.
        Anything that is not a Kafka error ends the process; the restart
        re-initialises cleanly from the committed state."""
        err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
        if not (isinstance(err, KafkaError) or isinstance(exc, TransientError)):
            raise exc
        if err is None or not err.fatal():
            try:
                self._abort_with_retries()
            except KafkaException as abort_exc:
                err = abort_exc.args[0] if abort_exc.args else None
                if not (isinstance(err, KafkaError) and err.fatal()):
                    raise exc from abort_exc
        if err is not None and err.fatal() and not self._replace_producer(err):
            raise exc
        metrics.WORKER_ERRORS.labels(worker="dedup", reason="transaction_aborted").inc()
        log.warning("dedup: transaction aborted, batch of %d will be consumed again: %s", len(batch), redact(str(exc)))
        self.rewind(batch)
        if isinstance(exc, TransientError):
            self.stop.wait(1.0)  # let the registry come back

    def _abort_with_retries(self, attempts: int = 20) -> None:
        """A broker outage can outlast one abort call; librdkafka then asks
        for the call to be retried (retriable error), so keep asking. Raises
        the last error when the abort cannot be done."""
        for attempt in range(attempts):
            try:
                self.producer.abort_transaction(self.common.shutdown_timeout_s)
                return
            except KafkaException as abort_exc:
                abort_err = abort_exc.args[0] if abort_exc.args else None
                retry = isinstance(abort_err, KafkaError) and abort_err.retriable()
                if not retry or attempt == attempts - 1 or self.stop.is_set():
                    log.warning("dedup: abort_transaction failed: %s", redact(str(abort_exc)))
                    raise
                log.warning("dedup: abort_transaction not done yet (attempt %d), retrying: %s",
                            attempt + 1, redact(str(abort_exc)))
                self.stop.wait(1.0)

    def _replace_producer(self, err: KafkaError) -> bool:
        """Replace a transactional producer that hit a fatal error.

        The usual cause is not a zombie: a broker outage longer than
        transaction.timeout.ms makes the coordinator abort our open
        transaction and bump the producer epoch, and the producer's next call
        fails INVALID_TXN_STATE or fenced. A new producer with the same
        transactional id re-initialises (init_transactions) and goes on from
        the committed offsets. Fenced again and again means another live
        process uses our instance id: after MAX_PRODUCER_REPLACEMENTS within
        PRODUCER_REPLACEMENT_WINDOW_S the process exits instead of fighting it."""
        now = time.monotonic()
        self._replacements = [t for t in self._replacements if now - t < PRODUCER_REPLACEMENT_WINDOW_S]
        if len(self._replacements) >= MAX_PRODUCER_REPLACEMENTS or self.stop.is_set():
            log.error("dedup: transactional producer failed fatally %d times in %ds (another process with "
                      "instance id %r?): exiting: %s", len(self._replacements) + 1, PRODUCER_REPLACEMENT_WINDOW_S,
                      self.common.instance_id, redact(str(err)))
            return False
        self._replacements.append(now)
        log.warning("dedup: transactional producer failed fatally, replacing it: %s", redact(str(err)))
        metrics.WORKER_ERRORS.labels(worker="dedup", reason="producer_replaced").inc()
        self.producer = self._transactional_producer()  # the old one is destroyed with its last reference
        deadline = now + TRANSACTION_TIMEOUT_MS / 1000 + self.common.shutdown_timeout_s
        while True:
            try:
                self.producer.init_transactions(self.common.shutdown_timeout_s)
                return True
            except KafkaException as exc:
                init_err = exc.args[0] if exc.args else None
                if not (isinstance(init_err, KafkaError) and init_err.retriable()) or time.monotonic() > deadline \
                        or self.stop.is_set():
                    log.error("dedup: the new transactional producer cannot start: %s", redact(str(exc)))
                    return False
                log.warning("dedup: init_transactions not done yet, retrying: %s", redact(str(exc)))

    def teardown(self) -> None:
        if self.producer is not None:
            try:
                self.producer.flush(5)  # nothing transactional is pending here; flushes stray control requests
            except KafkaException as exc:  # a producer that failed fatally has nothing left to flush
                log.warning("dedup: flushing the producer at shutdown: %s", redact(str(exc)))
