"""Typed, validated configuration: environment variables first (Kubernetes),
with an env file (``tradebus --config FILE``) and flags for local use.

Every reader names the variable in its error, so bad configuration fails at
start with a message a person can act on. Secret values are registered with
the log redactor the moment they are read.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from tradebus.redaction import register_secret


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the setting."""


REPO_ROOT = Path(__file__).resolve().parent.parent
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


def home_dir() -> Path:
    """Where schemas/ and protos/ live (the repo, or /app in the image)."""
    return Path(os.environ.get("TRADEBUS_HOME") or REPO_ROOT)


def load_env_file(path: str) -> None:
    """Read KEY=VALUE lines into os.environ; real environment variables win."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"--config {path}: cannot read ({exc.strerror})") from None
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--config {path}:{number}: expected KEY=VALUE")
        os.environ.setdefault(key.strip(), value.strip().strip('"').strip("'"))


class Env:
    """Typed access to a mapping of environment variables."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        self.environ = os.environ if environ is None else environ

    def raw(self, name: str) -> str | None:
        value = self.environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def str(self, name: str, default: str | None = None, *, required: bool = False, secret: bool = False) -> str | None:
        value = self.raw(name)
        if value is None:
            if required:
                raise ConfigError(f"{name} is required but not set")
            return default
        if secret:
            register_secret(value)
        return value

    def int(self, name: str, default: int, *, min: int | None = None, max: int | None = None) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"{name}: expected an integer, got {value!r}") from None
        return _in_range(name, number, min, max)

    def float(self, name: str, default: float, *, min: float | None = None, max: float | None = None) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{name}: expected a number, got {value!r}") from None
        return _in_range(name, number, min, max)

    def bool(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() in TRUE_WORDS:
            return True
        if value.lower() in FALSE_WORDS:
            return False
        raise ConfigError(f"{name}: expected true or false, got {value!r}")

    def list(self, name: str, default: list[str] | None = None) -> list[str]:
        value = self.raw(name)
        if value is None:
            return list(default or [])
        return [item.strip() for item in value.split(",") if item.strip()]

    def choice(self, name: str, default: str, choices: list[str]) -> str:
        value = self.raw(name) or default
        if value not in choices:
            raise ConfigError(f"{name}: expected one of {', '.join(choices)}, got {value!r}")
        return value

    def url(self, name: str, default: str | None = None, *, schemes: tuple[str, ...] = ("http", "https"), required: bool = False) -> str | None:
        value = self.str(name, default, required=required)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.netloc:
            raise ConfigError(f"{name}: expected a {'/'.join(schemes)} URL, got {redact_url_for_error(value)!r}")
        return value.rstrip("/")


def _in_range(name, number, low, high):
    if low is not None and number < low:
        raise ConfigError(f"{name}: must be at least {low}, got {number}")
    if high is not None and number > high:
        raise ConfigError(f"{name}: must be at most {high}, got {number}")
    return number


def redact_url_for_error(url: str) -> str:
    from tradebus.redaction import redact_url

    return redact_url(url)


# librdkafka security settings pass through: TRADEBUS_KAFKA_SASL_PASSWORD -> sasl.password
KAFKA_PASSTHROUGH_PREFIXES = ("TRADEBUS_KAFKA_SASL_", "TRADEBUS_KAFKA_SSL_")
KAFKA_SECRET_KEYS = {"sasl.password", "ssl.key.password", "ssl.keystore.password", "sasl.oauthbearer.client.secret"}


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str = "127.0.0.1:9092"
    schema_registry_url: str = "http://127.0.0.1:8081/apis/ccompat/v7"
    schema_registry_user_info: str | None = None
    security: dict[str, str] = field(default_factory=dict)
    linger_ms: int = 5
    compression: str = "lz4"
    queue_max_messages: int = 20000
    queue_max_kbytes: int = 32768
    message_timeout_ms: int = 0  # 0 = retry until delivered: a broker outage must not drop records

    def client_conf(self) -> dict[str, str]:
        """Settings shared by every Kafka client (bootstrap + security)."""
        return {"bootstrap.servers": self.bootstrap_servers, **self.security}

    def registry_conf(self) -> dict[str, str]:
        conf = {"url": self.schema_registry_url}
        if self.schema_registry_user_info:
            conf["basic.auth.user.info"] = self.schema_registry_user_info
        return conf

    @classmethod
    def from_env(cls, env: Env) -> "KafkaSettings":
        security: dict[str, str] = {}
        protocol = env.raw("TRADEBUS_KAFKA_SECURITY_PROTOCOL")
        if protocol:
            allowed = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
            if protocol.upper() not in allowed:
                raise ConfigError(f"TRADEBUS_KAFKA_SECURITY_PROTOCOL: expected one of {', '.join(allowed)}, got {protocol!r}")
            security["security.protocol"] = protocol.upper()
        for name in sorted(env.environ):
            if name.startswith(KAFKA_PASSTHROUGH_PREFIXES):
                key = name[len("TRADEBUS_KAFKA_"):].lower().replace("_", ".")
                value = env.str(name, secret=key in KAFKA_SECRET_KEYS)
                if value is not None:
                    security[key] = value
        return cls(
            bootstrap_servers=env.str("TRADEBUS_KAFKA_BOOTSTRAP_SERVERS", cls.bootstrap_servers),
            schema_registry_url=env.url("TRADEBUS_SCHEMA_REGISTRY_URL", cls.schema_registry_url),
            schema_registry_user_info=env.str("TRADEBUS_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO", secret=True),
            security=security,
            linger_ms=env.int("TRADEBUS_KAFKA_LINGER_MS", cls.linger_ms, min=0, max=1000),
            compression=env.choice("TRADEBUS_KAFKA_COMPRESSION", cls.compression, ["none", "gzip", "snappy", "lz4", "zstd"]),
            queue_max_messages=env.int("TRADEBUS_KAFKA_QUEUE_MAX_MESSAGES", cls.queue_max_messages, min=100),
            queue_max_kbytes=env.int("TRADEBUS_KAFKA_QUEUE_MAX_KBYTES", cls.queue_max_kbytes, min=1024),
            message_timeout_ms=env.int("TRADEBUS_KAFKA_MESSAGE_TIMEOUT_MS", cls.message_timeout_ms, min=0),
        )


@dataclass(frozen=True)
class CommonSettings:
    """What every tradebus process reads."""

    kafka: KafkaSettings
    instance_id: str
    http_port: int
    log_level: str
    log_format: str
    shutdown_timeout_s: float
    topic_prefix: str = ""

    @classmethod
    def from_env(cls, env: Env | None = None, *, default_http_port: int = 9400) -> "CommonSettings":
        env = env or Env()
        return cls(
            kafka=KafkaSettings.from_env(env),
            instance_id=env.str("TRADEBUS_INSTANCE_ID", socket.gethostname()),
            http_port=env.int("TRADEBUS_HTTP_PORT", default_http_port, min=0, max=65535),
            log_level=env.choice("TRADEBUS_LOG_LEVEL", "INFO", ["DEBUG", "INFO", "WARNING", "ERROR"]),
            log_format=env.choice("TRADEBUS_LOG_FORMAT", "json", ["json", "text"]),
            shutdown_timeout_s=env.float("TRADEBUS_SHUTDOWN_TIMEOUT_SECONDS", 30.0, min=1.0, max=600.0),
            topic_prefix=env.str("TRADEBUS_TOPIC_PREFIX", "") or "",
        )


def database_url(env: Env | None = None) -> str:
    env = env or Env()
    url = env.str("TRADEBUS_DATABASE_URL", "sqlite:///./tradebus.db")
    scheme = urlsplit(url).scheme
    if scheme not in ("sqlite", "postgresql", "postgres"):
        raise ConfigError(f"TRADEBUS_DATABASE_URL: expected sqlite:///PATH or postgresql://..., got scheme {scheme!r}")
    password = urlsplit(url).password
    if password:
        register_secret(password)
    return url
