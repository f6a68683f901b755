"""Settings of `tradebus produce hti`, from TRADEBUS_HTI_* environment
variables (flags override them). Every bad value fails at start naming the
setting; the API code is registered as a secret the moment it is read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Mapping

from producers.hti.convert import DEFAULT_ZONE_RULE, zone_for
from tradebus.config import ConfigError, Env

DEFAULT_HTTP_PORT = 9401
MIN_STALL_SECONDS = 3.0  # never declare a stream dead faster than this, whatever poll_seconds is


@dataclass(frozen=True)
class HtiProducerSettings:
    server_url: str = "http://127.0.0.1:3500"
    api_code: str = field(default="", repr=False)  # secret: kept out of repr
    history_limit: int = 50
    poll_seconds: float = 2.0
    connect_timeout_s: float = 10.0
    request_timeout_s: float = 30.0
    window_size: int = 10000
    stall_factor: float = 3.0
    time_zone: str = DEFAULT_ZONE_RULE
    heartbeat_status_s: float = 30.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    backoff_reset_s: float = 30.0  # a stream that stayed healthy this long resets the backoff
    shutdown_timeout_s: float = 30.0

    @property
    def stall_s(self) -> float:
        """No ping or idea for this long means the stream is dead."""
        return max(MIN_STALL_SECONDS, self.stall_factor * self.poll_seconds)

    @property
    def zone(self) -> tzinfo:
        return zone_for(self.time_zone)

    @classmethod
    def from_env(cls, env: Env | None = None, *, shutdown_timeout_s: float = 30.0,
                 flag_names: Mapping[str, str] | None = None) -> "HtiProducerSettings":
        """``flag_names`` maps a variable to the flag that set it, so an error names what the user typed."""
        env = env or Env()
        try:
            settings = cls(
                server_url=env.url("TRADEBUS_HTI_SERVER_URL", cls.server_url),
                api_code=env.str("TRADEBUS_HTI_API_CODE", required=True, secret=True),
                history_limit=env.int("TRADEBUS_HTI_HISTORY_LIMIT", cls.history_limit, min=1, max=50),
                poll_seconds=env.float("TRADEBUS_HTI_POLL_SECONDS", cls.poll_seconds, min=1.0, max=10.0),
                connect_timeout_s=env.float("TRADEBUS_HTI_CONNECT_TIMEOUT_SECONDS", cls.connect_timeout_s, min=0.1, max=300.0),
                request_timeout_s=env.float("TRADEBUS_HTI_REQUEST_TIMEOUT_SECONDS", cls.request_timeout_s, min=0.5, max=600.0),
                window_size=env.int("TRADEBUS_HTI_WINDOW_SIZE", cls.window_size, min=100, max=10_000_000),
                stall_factor=env.float("TRADEBUS_HTI_STALL_FACTOR", cls.stall_factor, min=1.0, max=100.0),
                time_zone=env.str("TRADEBUS_HTI_TIME_ZONE", cls.time_zone),
                heartbeat_status_s=env.float("TRADEBUS_HTI_HEARTBEAT_STATUS_SECONDS", cls.heartbeat_status_s, min=1.0, max=3600.0),
                backoff_base_s=env.float("TRADEBUS_HTI_BACKOFF_BASE_SECONDS", cls.backoff_base_s, min=0.01, max=60.0),
                backoff_cap_s=env.float("TRADEBUS_HTI_BACKOFF_CAP_SECONDS", cls.backoff_cap_s, min=0.01, max=3600.0),
                shutdown_timeout_s=shutdown_timeout_s,
            )
            if settings.backoff_cap_s < settings.backoff_base_s:
                raise ConfigError("TRADEBUS_HTI_BACKOFF_CAP_SECONDS: must be at least TRADEBUS_HTI_BACKOFF_BASE_SECONDS")
            try:
                zone_for(settings.time_zone)
            except ValueError as exc:
                raise ConfigError(f"TRADEBUS_HTI_TIME_ZONE: {exc}") from None
        except ConfigError as exc:
            raise ConfigError(_name_flag(str(exc), flag_names or {})) from None
        return settings


def _name_flag(message: str, flag_names: Mapping[str, str]) -> str:
    for variable, flag in flag_names.items():
        if message.startswith(variable):
            return f"{flag} ({variable}){message[len(variable):]}"
    return message
