"""The gRPC channel to Anthid: TLS by default, every transport option explicit.

One channel is one TCP connection (a local subchannel pool, so two channels
to the same target never share a connection and the producer's connection
count is what it says). The API key goes in the `x-api-key` metadata of each
call, never into a log line.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc

from producers.anthid.settings import AnthidProducerSettings
from tradebus.config import ConfigError

STREAM_EVENTS = "/trading.TradingService/StreamEvents"


def channel_options(settings: AnthidProducerSettings) -> list[tuple[str, object]]:
    return [
        # Keepalive pings detect a dead TCP connection (NAT drop, half-open
        # socket) even when the application heartbeat is slow; not sent
        # without an active call, which servers commonly punish with GOAWAY.
        ("grpc.keepalive_time_ms", int(settings.keepalive_s * 1000)),
        ("grpc.keepalive_timeout_ms", int(settings.keepalive_timeout_s * 1000)),
        ("grpc.keepalive_permit_without_calls", 0),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", 1024 * 1024),  # we only send small Subscribe messages
        # Our own backoff paces reconnects; grpc's transport backoff must not
        # add minutes on top after a server restart.
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.min_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", int(settings.backoff_max_s * 1000)),
        ("grpc.use_local_subchannel_pool", 1),
        ("grpc.enable_retries", 0),  # a stream is never retried transparently: we resubscribe
        ("grpc.primary_user_agent", "tradebus-anthid-producer"),
    ]


def root_certificates(settings: AnthidProducerSettings) -> bytes | None:
    """The CA file when configured, else the system bundle; None lets grpc
    fall back to its own roots (or GRPC_DEFAULT_SSL_ROOTS_FILE_PATH)."""
    path = settings.ca_file or ssl.get_default_verify_paths().cafile
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        if settings.ca_file:
            raise ConfigError(f"TRADEBUS_ANTHID_CA_FILE: cannot read {path} ({exc.strerror})") from None
        return None


def open_channel(settings: AnthidProducerSettings) -> grpc.Channel:
    options = channel_options(settings)
    if not settings.tls:
        return grpc.insecure_channel(settings.target, options=options)
    credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates(settings))
    return grpc.secure_channel(settings.target, credentials, options=options)


def call_metadata(settings: AnthidProducerSettings) -> tuple[tuple[str, str], ...]:
    return (("x-api-key", settings.api_key),)
