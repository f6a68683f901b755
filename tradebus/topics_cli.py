"""`tradebus topics create|list`: the topic registry made real."""

from __future__ import annotations

import sys

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from tradebus.config import CommonSettings, ConfigError
from tradebus.serde import SchemaRegistrationError, register_schema, registry_client
from tradebus.topics import ALL_TOPICS, TopicNames


def register(parser) -> None:
    sub = parser.add_subparsers(dest="topics_command", metavar="ACTION")
    create = sub.add_parser("create", help="create every topic (idempotent) and register the value schemas")
    create.add_argument("--replication-factor", type=int, default=1)
    create.add_argument("--prefix", help="topic name prefix (default TRADEBUS_TOPIC_PREFIX)")
    create.add_argument("--schemas-only", action="store_true",
                        help="only register the schemas (topics managed elsewhere, e.g. Strimzi KafkaTopic resources)")
    create.set_defaults(func=lambda a: create_topics(CommonSettings.from_env(), a.replication_factor, a.prefix, a.schemas_only))
    listing = sub.add_parser("list", help="show the registry and whether each topic exists")
    listing.add_argument("--prefix")
    listing.set_defaults(func=lambda a: list_topics(CommonSettings.from_env(), a.prefix))
    parser.set_defaults(func=lambda a: parser.print_help() or 2)


def register_schemas(common: CommonSettings, prefix: str | None = None, topics=ALL_TOPICS) -> None:
    names = TopicNames(common.topic_prefix if prefix is None else prefix)
    client = registry_client(common.kafka)
    for t in topics:
        if t.value_schema:
            register_schema(client, names.value_subject(t), t.value_schema)


def ensure_topics(common: CommonSettings, replication_factor: int = 1, prefix: str | None = None,
                  topics=ALL_TOPICS, timeout: float = 30.0) -> list[str]:
    """Create missing topics and register schemas; returns the names created."""
    names = TopicNames(common.topic_prefix if prefix is None else prefix)
    admin = AdminClient(common.kafka.client_conf())
    try:
        existing = set(admin.list_topics(timeout=timeout).topics)
    except KafkaException as exc:
        raise ConfigError(f"TRADEBUS_KAFKA_BOOTSTRAP_SERVERS: Kafka unreachable ({exc.args[0].str()})") from None
    wanted = [
        NewTopic(names(t), num_partitions=t.partitions, replication_factor=replication_factor, config=t.config())
        for t in topics if names(t) not in existing
    ]
    created = []
    if wanted:
        for name, future in admin.create_topics(wanted, request_timeout=timeout).items():
            try:
                future.result()
                created.append(name)
            except KafkaException as exc:
                if exc.args[0].code() != 36:  # TOPIC_ALREADY_EXISTS: a concurrent creator won
                    raise
    register_schemas(common, prefix, topics)
    return created


def create_topics(common: CommonSettings, replication_factor: int, prefix: str | None, schemas_only: bool = False) -> int:
    try:
        if schemas_only:
            register_schemas(common, prefix)
            print("schemas registered")
            return 0
        created = ensure_topics(common, replication_factor, prefix)
    except SchemaRegistrationError as exc:
        print(f"tradebus topics create: {exc}", file=sys.stderr)
        return 1
    names = TopicNames(common.topic_prefix if prefix is None else prefix)
    for t in ALL_TOPICS:
        print(f"{'created' if names(t) in created else 'exists '} {names(t)}")
    return 0


def list_topics(common: CommonSettings, prefix: str | None) -> int:
    names = TopicNames(common.topic_prefix if prefix is None else prefix)
    try:
        existing = AdminClient(common.kafka.client_conf()).list_topics(timeout=10).topics
    except KafkaException:
        existing = {}
    print(f"{'TOPIC':42} {'PARTS':>5} {'POLICY':8} {'RETENTION':>10} {'EXISTS':6} KEY / VALUE SCHEMA")
    for t in ALL_TOPICS:
        retention = f"{t.retention_ms // 86400000}d" if t.retention_ms else "-"
        print(f"{names(t):42} {t.partitions:>5} {t.cleanup_policy:8} {retention:>10} "
              f"{'yes' if names(t) in existing else 'no':6} {t.key_doc} / {t.value_schema or 'bytes'}")
    return 0
