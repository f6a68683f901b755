"""Settings of `tradebus produce anthid`, read from the environment.

Every value is checked here, at start, and an error names the variable.
The API key is registered with the redactor as it is read.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from tradebus.config import ConfigError, Env

DEFAULT_HTTP_PORT = 9402
EVENT_KINDS = ("BROKER_ORDER", "BROKER_POSITION", "BROKER_TRADE", "INTENT_ACTION")
ORDER_DELIVERIES = ("PRIMED", "LIVE")
# The per-organization streaming connection limit the provider reports (spec §3).
ORG_CONNECTION_LIMIT = 100


@dataclass(frozen=True)
class AnthidProducerSettings:
    api_key: str
    target: str = "127.0.0.1:50051"
    tls: bool = True
    ca_file: str | None = None
    accounts: tuple[str, ...] = ()  # empty: one org-wide subscription
    event_kinds: tuple[str, ...] = EVENT_KINDS
    order_delivery: str = "PRIMED"
    heartbeat_timeout_s: float = 30.0
    heartbeat_status_s: float = 30.0
    max_connections: int = 1
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    keepalive_s: float = 60.0
    keepalive_timeout_s: float = 20.0
    max_message_bytes: int = 16 * 1024 * 1024

    @property
    def connection_count(self) -> int:
        """Accounts share connections: never more than there are scopes."""
        return max(1, min(self.max_connections, len(self.accounts) or 1))

    def account_groups(self) -> list[tuple[str, ...]]:
        """The account scopes of each connection; ('',) is the org-wide scope."""
        if not self.accounts:
            return [("",)]
        groups: list[list[str]] = [[] for _ in range(self.connection_count)]
        for index, account in enumerate(self.accounts):
            groups[index % len(groups)].append(account)
        return [tuple(g) for g in groups]

    @classmethod
    def from_env(cls, env: Env | None = None) -> "AnthidProducerSettings":
        env = env or Env()
        tls = env.bool("TRADEBUS_ANTHID_TLS", True)
        ca_file = env.str("TRADEBUS_ANTHID_CA_FILE")
        if ca_file and not Path(ca_file).is_file():
            raise ConfigError(f"TRADEBUS_ANTHID_CA_FILE: {ca_file} is not a readable file")
        if ca_file and not tls:
            raise ConfigError("TRADEBUS_ANTHID_CA_FILE is set but TRADEBUS_ANTHID_TLS=false: remove one of them")
        backoff_initial = env.float("TRADEBUS_ANTHID_BACKOFF_INITIAL_SECONDS", cls.backoff_initial_s, min=0.01, max=60)
        return cls(
            api_key=env.str("TRADEBUS_ANTHID_API_KEY", required=True, secret=True),
            target=_target(env.str("TRADEBUS_ANTHID_TARGET", cls.target)),
            tls=tls,
            ca_file=ca_file,
            accounts=_accounts(env.list("TRADEBUS_ANTHID_ACCOUNTS")),
            event_kinds=_event_kinds(env.list("TRADEBUS_ANTHID_EVENT_KINDS", list(EVENT_KINDS))),
            order_delivery=env.choice("TRADEBUS_ANTHID_ORDER_DELIVERY", cls.order_delivery, list(ORDER_DELIVERIES)),
            heartbeat_timeout_s=env.float("TRADEBUS_ANTHID_HEARTBEAT_TIMEOUT_SECONDS", cls.heartbeat_timeout_s, min=0.5, max=3600),
            heartbeat_status_s=env.float("TRADEBUS_ANTHID_HEARTBEAT_STATUS_SECONDS", cls.heartbeat_status_s, min=0, max=86400),
            max_connections=env.int("TRADEBUS_ANTHID_MAX_CONNECTIONS", cls.max_connections, min=1, max=ORG_CONNECTION_LIMIT),
            backoff_initial_s=backoff_initial,
            backoff_max_s=env.float("TRADEBUS_ANTHID_BACKOFF_MAX_SECONDS", max(cls.backoff_max_s, backoff_initial),
                                    min=backoff_initial, max=3600),
            keepalive_s=env.float("TRADEBUS_ANTHID_KEEPALIVE_SECONDS", cls.keepalive_s, min=10, max=3600),
            keepalive_timeout_s=env.float("TRADEBUS_ANTHID_KEEPALIVE_TIMEOUT_SECONDS", cls.keepalive_timeout_s, min=1, max=600),
            max_message_bytes=env.int("TRADEBUS_ANTHID_MAX_MESSAGE_BYTES", cls.max_message_bytes, min=65536, max=256 * 1024 * 1024),
        )


def _target(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in value:
        raise ConfigError(f"TRADEBUS_ANTHID_TARGET: expected host:port, got {value!r}")
    return value


def _accounts(values: list[str]) -> tuple[str, ...]:
    accounts: list[str] = []
    for value in values:
        try:
            account = str(uuid.UUID(value))
        except ValueError:
            raise ConfigError(f"TRADEBUS_ANTHID_ACCOUNTS: {value!r} is not an account UUID") from None
        if account in accounts:
            raise ConfigError(f"TRADEBUS_ANTHID_ACCOUNTS: {value!r} is listed twice")
        accounts.append(account)
    return tuple(accounts)


def _event_kinds(values: list[str]) -> tuple[str, ...]:
    kinds: list[str] = []
    for value in values:
        kind = value.upper().removeprefix("EVENT_TYPE_")
        if kind not in EVENT_KINDS:
            raise ConfigError(f"TRADEBUS_ANTHID_EVENT_KINDS: expected some of {', '.join(EVENT_KINDS)}, got {value!r}")
        if kind not in kinds:
            kinds.append(kind)
    if not kinds:
        raise ConfigError("TRADEBUS_ANTHID_EVENT_KINDS: at least one kind is needed")
    return tuple(kinds)
