"""AnthidProducerSettings.from_env: defaults, validation naming the variable,
the API key registered as a secret, connection grouping, CLI flag overlay."""

import argparse

import pytest

from producers.anthid import cli
from producers.anthid.channel import channel_options
from producers.anthid.settings import AnthidProducerSettings
from tradebus.config import ConfigError, Env
from tradebus.redaction import redact

A1 = "6a1b5c1e-3c2d-5e4f-8a9b-0c1d2e3f4a5b"
A2 = "7b2c6d2f-4d3e-5f50-9bac-1d2e3f4a5b6c"
A3 = "8c3d7e30-5e4f-5061-acbd-2e3f4a5b6c7d"


def settings(**env):
    return AnthidProducerSettings.from_env(Env({"TRADEBUS_ANTHID_API_KEY": "key-for-tests-123", **env}))


def test_defaults():
    s = settings()
    assert s.target == "127.0.0.1:50051" and s.tls is True and s.ca_file is None
    assert s.accounts == () and s.account_groups() == [("",)]
    assert s.event_kinds == ("BROKER_ORDER", "BROKER_POSITION", "BROKER_TRADE", "INTENT_ACTION")
    assert s.order_delivery == "PRIMED" and s.heartbeat_timeout_s == 30.0 and s.heartbeat_status_s == 30.0
    assert s.max_connections == 1 and s.connection_count == 1


def test_api_key_required_and_redacted():
    with pytest.raises(ConfigError, match="TRADEBUS_ANTHID_API_KEY is required"):
        AnthidProducerSettings.from_env(Env({}))
    settings(TRADEBUS_ANTHID_API_KEY="sk-live-abcdef0123")
    assert redact("metadata x-api-key sk-live-abcdef0123") == "metadata x-api-key ***"


@pytest.mark.parametrize("name, value, message", [
    ("TRADEBUS_ANTHID_TARGET", "nohost", "TRADEBUS_ANTHID_TARGET: expected host:port"),
    ("TRADEBUS_ANTHID_TARGET", "h:99999", "TRADEBUS_ANTHID_TARGET"),
    ("TRADEBUS_ANTHID_TARGET", "https://h:443", "TRADEBUS_ANTHID_TARGET"),
    ("TRADEBUS_ANTHID_TLS", "maybe", "TRADEBUS_ANTHID_TLS: expected true or false"),
    ("TRADEBUS_ANTHID_ACCOUNTS", "acc-1", "TRADEBUS_ANTHID_ACCOUNTS: 'acc-1' is not an account UUID"),
    ("TRADEBUS_ANTHID_ACCOUNTS", f"{A1},{A1}", "listed twice"),
    ("TRADEBUS_ANTHID_EVENT_KINDS", "BROKER_ORDER,QUOTES", "TRADEBUS_ANTHID_EVENT_KINDS"),
    ("TRADEBUS_ANTHID_EVENT_KINDS", ",", "at least one kind"),
    ("TRADEBUS_ANTHID_ORDER_DELIVERY", "REPLAY", "TRADEBUS_ANTHID_ORDER_DELIVERY: expected one of PRIMED, LIVE"),
    ("TRADEBUS_ANTHID_HEARTBEAT_TIMEOUT_SECONDS", "0", "TRADEBUS_ANTHID_HEARTBEAT_TIMEOUT_SECONDS: must be at least"),
    ("TRADEBUS_ANTHID_MAX_CONNECTIONS", "101", "TRADEBUS_ANTHID_MAX_CONNECTIONS: must be at most 100"),
    ("TRADEBUS_ANTHID_MAX_CONNECTIONS", "0", "TRADEBUS_ANTHID_MAX_CONNECTIONS"),
    ("TRADEBUS_ANTHID_CA_FILE", "/nonexistent/ca.pem", "TRADEBUS_ANTHID_CA_FILE"),
])
def test_bad_values_name_the_setting(name, value, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        settings(**{name: value})


def test_ca_file_with_plaintext_is_contradictory(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    assert settings(TRADEBUS_ANTHID_CA_FILE=str(ca)).ca_file == str(ca)
    with pytest.raises(ConfigError, match="TRADEBUS_ANTHID_TLS=false"):
        settings(TRADEBUS_ANTHID_CA_FILE=str(ca), TRADEBUS_ANTHID_TLS="false")


def test_event_kinds_accept_both_spellings():
    s = settings(TRADEBUS_ANTHID_EVENT_KINDS="event_type_broker_trade, BROKER_ORDER")
    assert s.event_kinds == ("BROKER_TRADE", "BROKER_ORDER")


def test_accounts_share_connections_up_to_the_limit():
    s = settings(TRADEBUS_ANTHID_ACCOUNTS=f"{A1},{A2},{A3}")
    assert s.account_groups() == [(A1, A2, A3)]  # default: one connection for everything
    s = settings(TRADEBUS_ANTHID_ACCOUNTS=f"{A1},{A2},{A3}", TRADEBUS_ANTHID_MAX_CONNECTIONS="2")
    assert s.account_groups() == [(A1, A3), (A2,)]
    s = settings(TRADEBUS_ANTHID_ACCOUNTS=A1, TRADEBUS_ANTHID_MAX_CONNECTIONS="10")
    assert s.connection_count == 1  # never more connections than scopes
    assert settings(TRADEBUS_ANTHID_MAX_CONNECTIONS="10").account_groups() == [("",)]


def test_transport_options_are_explicit():
    options = dict(channel_options(settings()))
    for name in ("grpc.keepalive_time_ms", "grpc.keepalive_timeout_ms", "grpc.keepalive_permit_without_calls",
                 "grpc.max_receive_message_length", "grpc.max_send_message_length", "grpc.use_local_subchannel_pool"):
        assert name in options
    assert options["grpc.keepalive_time_ms"] == 60_000 and options["grpc.max_receive_message_length"] == 16 * 1024 * 1024


def test_cli_flags_override_the_environment(monkeypatch):
    monkeypatch.setenv("TRADEBUS_ANTHID_TARGET", "anthid.example:443")
    parser = argparse.ArgumentParser()
    cli.register(parser)
    args = parser.parse_args(["--target", "127.0.0.1:6000", "--plaintext", "--accounts", f"{A1},{A2}"])
    environ = cli.environment(args)
    assert environ["TRADEBUS_ANTHID_TARGET"] == "127.0.0.1:6000" and environ["TRADEBUS_ANTHID_TLS"] == "false"
    s = AnthidProducerSettings.from_env(Env({**environ, "TRADEBUS_ANTHID_API_KEY": "k-123456"}))
    assert s.tls is False and s.accounts == (A1, A2)
