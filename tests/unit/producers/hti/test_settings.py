"""HtiProducerSettings.from_env: defaults, ranges, secret registration, flag names in errors."""

import pytest

from producers.hti.settings import HtiProducerSettings
from tradebus.config import ConfigError, Env
from tradebus.redaction import redact

CODE = "140b17o794rA680-1Ba16t168C566"


def settings(**env):
    return HtiProducerSettings.from_env(Env({"TRADEBUS_HTI_API_CODE": CODE, **env}))


def test_defaults_and_secret_registered():
    s = settings()
    assert (s.server_url, s.history_limit, s.poll_seconds, s.window_size) == ("http://127.0.0.1:3500", 50, 2.0, 10000)
    assert s.stall_s == 6.0 and s.time_zone == "America/New_York" and s.heartbeat_status_s == 30.0
    assert CODE not in repr(s)
    assert redact(f"url?x={CODE}") == "url?x=***"


def test_stall_has_a_floor():
    assert settings(TRADEBUS_HTI_POLL_SECONDS="1").stall_s == 3.0
    assert settings(TRADEBUS_HTI_POLL_SECONDS="10", TRADEBUS_HTI_STALL_FACTOR="2").stall_s == 20.0


@pytest.mark.parametrize("name,value,needle", [
    ("TRADEBUS_HTI_HISTORY_LIMIT", "51", "TRADEBUS_HTI_HISTORY_LIMIT: must be at most 50"),
    ("TRADEBUS_HTI_HISTORY_LIMIT", "0", "TRADEBUS_HTI_HISTORY_LIMIT: must be at least 1"),
    ("TRADEBUS_HTI_POLL_SECONDS", "0.5", "TRADEBUS_HTI_POLL_SECONDS: must be at least 1.0"),
    ("TRADEBUS_HTI_POLL_SECONDS", "fast", "TRADEBUS_HTI_POLL_SECONDS: expected a number"),
    ("TRADEBUS_HTI_SERVER_URL", "ftp://x", "TRADEBUS_HTI_SERVER_URL: expected a http/https URL"),
    ("TRADEBUS_HTI_TIME_ZONE", "EST5EDTX", "TRADEBUS_HTI_TIME_ZONE: unknown time zone"),
    ("TRADEBUS_HTI_WINDOW_SIZE", "5", "TRADEBUS_HTI_WINDOW_SIZE: must be at least 100"),
])
def test_bad_values_name_the_setting(name, value, needle):
    with pytest.raises(ConfigError, match=needle):
        settings(**{name: value})


def test_missing_code_and_flag_names():
    with pytest.raises(ConfigError, match="TRADEBUS_HTI_API_CODE is required"):
        HtiProducerSettings.from_env(Env({}))
    with pytest.raises(ConfigError, match=r"^--history-limit \(TRADEBUS_HTI_HISTORY_LIMIT\): must be at most 50"):
        HtiProducerSettings.from_env(Env({"TRADEBUS_HTI_API_CODE": CODE, "TRADEBUS_HTI_HISTORY_LIMIT": "99"}),
                                     flag_names={"TRADEBUS_HTI_HISTORY_LIMIT": "--history-limit"})


def test_fixed_zone_rule_accepted():
    assert settings(TRADEBUS_HTI_TIME_ZONE="fixed-utc-5").zone.utcoffset(None).total_seconds() == -5 * 3600
