"""The topic registry: every topic's name, key, value schema, partitions and
retention, declared once and read everywhere else."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

DAY_MS = 24 * 3600 * 1000


class KeyFormat(Enum):
    """Keys are plain UTF-8 strings: stable bytes for compaction and
    partitioning whatever schema ids the registry hands out."""

    STRING = "string"


@dataclass(frozen=True)
class Topic:
    name: str
    value_schema: str  # full Avro name; the file is schemas/<name>.avsc
    key_doc: str
    partitions: int = 6
    cleanup_policy: str = "delete"
    retention_ms: int | None = 7 * DAY_MS
    doc: str = ""
    key_format: KeyFormat = KeyFormat.STRING

    def config(self) -> dict[str, str]:
        conf = {"cleanup.policy": self.cleanup_policy}
        if self.retention_ms is not None and "delete" in self.cleanup_policy:
            conf["retention.ms"] = str(self.retention_ms)
        if self.cleanup_policy == "compact":
            conf["min.cleanable.dirty.ratio"] = "0.1"
        return conf

    @property
    def value_subject(self) -> str:
        return f"{self.name}-value"


HTI_IDEAS = Topic("hti.ideas.v1", "tradebus.v1.HtiIdea", "idea_id", doc="Every HTI trade idea version received (history and stream).")
BROKER_ORDERS = Topic("anthid.broker-orders.v1", "tradebus.v1.BrokerOrder", "order_id", doc="Anthid broker order states, live and primed replays.")
BROKER_POSITIONS = Topic(
    "anthid.broker-positions.v1", "tradebus.v1.BrokerPosition", "account_id|symbol",
    cleanup_policy="compact", retention_ms=None, doc="Anthid positions; compacted to the latest per account and symbol.",
)
BROKER_TRADES = Topic("anthid.broker-trades.v1", "tradebus.v1.BrokerTrade", "account_id|order_id", retention_ms=30 * DAY_MS, doc="Anthid executions.")
INTENT_ACTIONS = Topic("anthid.intent-actions.v1", "tradebus.v1.IntentAction", "intent_id", retention_ms=30 * DAY_MS, doc="Anthid committed intent commands.")
STATUS = Topic("tradebus.status.v1", "tradebus.v1.StatusEvent", "source/producer_instance", partitions=3, doc="Heartbeats, subscription status, primed markers, upstream errors, gaps.")
DLQ = Topic("tradebus.dlq.v1", "tradebus.v1.DeadLetter", "source/producer_instance", partitions=3, retention_ms=30 * DAY_MS, doc="Upstream data that could not be converted, with the reason.")
ALERTS = Topic("tradebus.alerts.v1", "tradebus.v1.Alert", "alert key", partitions=3, retention_ms=30 * DAY_MS, doc="Alerts fired and their delivery status.")

PRODUCER_TOPICS = [HTI_IDEAS, BROKER_ORDERS, BROKER_POSITIONS, BROKER_TRADES, INTENT_ACTIONS, STATUS, DLQ, ALERTS]


def unique_of(topic: Topic) -> Topic:
    """The deduplicated twin of a data topic: same key, schema and policy."""
    base = topic.name.rsplit(".v", 1)[0]
    return Topic(
        f"{base}.unique.v1", topic.value_schema, topic.key_doc, topic.partitions, topic.cleanup_policy,
        topic.retention_ms, doc=f"Each distinct event of {topic.name} exactly once.",
    )


DATA_TOPICS = [HTI_IDEAS, BROKER_ORDERS, BROKER_POSITIONS, BROKER_TRADES, INTENT_ACTIONS]
UNIQUE_TOPICS = {t.name: unique_of(t) for t in DATA_TOPICS}
DEDUP_STATE = Topic(
    "tradebus.dedup-state.v1", "", "identity hash", cleanup_policy="compact", retention_ms=None,
    doc="The dedup worker's changelog of seen identities (compacted).",
)

ALL_TOPICS: list[Topic] = PRODUCER_TOPICS + list(UNIQUE_TOPICS.values()) + [DEDUP_STATE]


class TopicNames:
    """Resolves registry topics to real names, with an optional prefix so a
    test or a tenant can run the whole pipeline on topics of its own."""

    def __init__(self, prefix: str = ""):
        self.prefix = prefix

    def __call__(self, topic: Topic) -> str:
        return f"{self.prefix}{topic.name}"

    def value_subject(self, topic: Topic) -> str:
        return f"{self(topic)}-value"


def by_name(name: str, prefix: str = "") -> Topic:
    bare = name[len(prefix):] if prefix and name.startswith(prefix) else name
    for topic in ALL_TOPICS:
        if topic.name == bare:
            return topic
    raise KeyError(f"unknown topic {name!r}; known: {', '.join(t.name for t in ALL_TOPICS)}")
