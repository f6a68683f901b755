import argparse

import pytest

from simulators.hti import cli
from tradebus.config import ConfigError


def parse(*argv):
    parser = argparse.ArgumentParser()
    cli.register(parser)
    return parser.parse_args(list(argv))


def test_register_sets_func_and_defaults(monkeypatch):
    monkeypatch.delenv(cli.FALLBACK_CODE_ENV, raising=False)
    args = parse("--api-code", "code-one", "--api-code", "code-two")
    assert args.func is cli.main
    config = cli.config_from_args(args)
    assert (config.host, config.port, config.rate, config.history_size) == ("127.0.0.1", 3500, 1.0, 500)
    assert [p.account_name for p in config.profiles] == ["SIM ACCOUNT 01", "SIM ACCOUNT 02"]
    assert all(p.request_limit_per_minute == 600 and p.validity_type == "unlimited" for p in config.profiles)
    assert config.error_body == "detail" and not config.clamp_params and config.retry_after_header
    assert config.stream_auth_errors == "http" and config.history_order == "last_update"
    assert config.ping_seconds is None and config.sse_framing == "chunked" and not config.fixed_est


def test_every_switch_reaches_the_config(tmp_path):
    profiles = tmp_path / "p.yaml"
    profiles.write_text("- api_code: code-file\n  filters: {sides: [Buy]}\n")
    config = cli.config_from_args(parse(
        "--profiles", str(profiles), "--api-code", "code-flag", "--request-limit", "7", "--port", "0",
        "--rate", "0.5", "--seed", "9", "--ledger", str(tmp_path / "l.jsonl"), "--history-size", "20",
        "--fixed-est", "--extra-field", "--history-order", "creation_time", "--clamp-params",
        "--error-body", "message", "--no-retry-after", "--no-count-stream-connects", "--stream-auth-errors", "event",
        "--on-expiry", "keep", "--ping-seconds", "0.5", "--plain-sse", "--multiline-data", "--sse-framing", "close",
        "--deliver-every-poll", "--end-stream-after", "5", "--stall-after", "2", "--malformed-every", "3",
        "--duplicate-every", "4", "--error-event-after", "6", "--fail-5xx-for", "1.5", "--fail-429-for", "2.5",
    ))
    assert [p.request_limit_per_minute for p in config.profiles] == [60, 7]
    assert config.profiles[0].filters["sides"] == ("Buy",)
    assert (config.rate, config.seed, config.history_size, config.ledger_path.name) == (0.5, 9, 20, "l.jsonl")
    assert config.fixed_est and config.extra_field and config.clamp_params and config.plain_sse
    assert config.multiline_data and config.deliver_every_poll
    assert not config.retry_after_header and not config.count_stream_connects
    assert (config.history_order, config.error_body, config.stream_auth_errors, config.on_expiry, config.sse_framing) == (
        "creation_time", "message", "event", "keep", "close")
    assert (config.ping_seconds, config.end_stream_after, config.stall_after, config.malformed_every) == (0.5, 5, 2.0, 3)
    assert (config.duplicate_every, config.error_event_after, config.fail_5xx_for, config.fail_429_for) == (4, 6, 1.5, 2.5)


def test_code_from_the_producer_environment(monkeypatch):
    monkeypatch.setenv(cli.FALLBACK_CODE_ENV, "code-from-env")
    assert [p.api_code for p in cli.config_from_args(parse()).profiles] == ["code-from-env"]


@pytest.mark.parametrize("argv", [
    (),
    ("--api-code", "code-one", "--rate", "-1"),
    ("--api-code", "code-one", "--malformed-every", "1"),
    ("--api-code", "code-one", "--history-size", "0"),
    ("--api-code", "code-one", "--api-code", "code-one"),
])
def test_bad_settings_fail_at_start(monkeypatch, argv):
    monkeypatch.delenv(cli.FALLBACK_CODE_ENV, raising=False)
    with pytest.raises(ConfigError) as info:
        cli.config_from_args(parse(*argv))
    assert "code-one" not in str(info.value)
