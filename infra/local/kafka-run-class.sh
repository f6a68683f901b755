#!/usr/bin/env bash
# Runs a Kafka tool class with the local stack's Kafka classpath, e.g.
#   infra/local/kafka-run-class.sh org.apache.kafka.tools.ProducerPerformance --topic t --num-records 100000 \
#       --record-size 200 --throughput -1 --producer-props bootstrap.servers=127.0.0.1:9092
#   infra/local/kafka-run-class.sh org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:9092 --list
# The jars come from `infra/local/stack.sh setup` (.local/dist/kafka-<version>/libs).
# KAFKA_HEAP_OPTS (default -Xmx512m) and KAFKA_OPTS add JVM flags; tool logging goes to stderr at WARN.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
# shellcheck source=versions.sh
source "$SCRIPT_DIR/versions.sh"
KAFKA_LIBS="$REPO_ROOT/.local/dist/kafka-$KAFKA_VERSION/libs"

if [[ $# -lt 1 ]]; then
    echo "usage: $0 CLASS [ARGS...]" >&2
    exit 2
fi
if [[ ! -f "$KAFKA_LIBS/.complete" ]]; then
    echo "ERROR: Kafka $KAFKA_VERSION jars are not in $KAFKA_LIBS; run: bash infra/local/stack.sh setup" >&2
    exit 1
fi
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
command -v "$JAVA" >/dev/null 2>&1 || { echo "ERROR: java not found (Kafka tools need Java 17+)" >&2; exit 1; }

# shellcheck disable=SC2086  # the *_OPTS variables are lists of JVM flags
exec "$JAVA" ${KAFKA_HEAP_OPTS:--Xmx512m} ${KAFKA_OPTS:-} -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$SCRIPT_DIR/kafka-tools-log4j2.properties" \
    -cp "$KAFKA_LIBS/*" "$@"
