"""Sinks against local servers: a webhook HTTP server on a free port (JSON and
Slack payloads, retries with backoff, a failing server, timeouts, the
breaker) and a minimal SMTP responder; secrets never reach an error."""

import io
import json
import time
from datetime import datetime, timezone

import pytest

from consumers.alerts.rules import parse_rules
from consumers.alerts.sinks import EmailSink, LogSink, WebhookSink, build_sinks
from tests.unit.consumers.alerts.fakes import SmtpServer, WebhookServer, free_port
from tradebus.config import ConfigError, Env
from tradebus.redaction import redact

FIRED = datetime(2026, 4, 22, 13, 17, 47, tzinfo=timezone.utc)


def alert(**changes):
    record = {
        "alert_id": "a1", "rule": "big-fill", "alert_key": "big-fill:o-1", "severity": "critical", "title": "Large fill: AAPL",
        "message": "a-1 bought 5000 AAPL", "fired_at": FIRED, "source_topic": "anthid.broker-trades.unique.v1",
        "source_key": "a-1|o-1", "event_time": FIRED, "deliveries": [], "details": {"notional": "617200.00"},
    }
    record.update(changes)
    return record


def fast(**kw):
    """Backoff small enough for a unit test; the policy itself is checked separately."""
    return {"backoff_s": 0.01, "max_backoff_s": 0.05, **kw}


def test_log_sink_writes_one_json_line():
    out = io.StringIO()
    delivery = LogSink("log", stream=out).deliver(alert())
    assert (delivery.status, delivery.attempts) == ("delivered", 1)
    line = json.loads(out.getvalue())
    assert line["alert"]["alert_key"] == "big-fill:o-1" and line["alert"]["fired_at"] == "2026-04-22T13:17:47+00:00"


def test_webhook_posts_the_alert_as_json():
    with WebhookServer() as server:
        delivery = WebhookSink("hook", server.url).deliver(alert())
        [got] = server.wait_for(1)
    assert (delivery.status, delivery.attempts, delivery.error) == ("delivered", 1, None)
    assert got["body"]["alert_key"] == "big-fill:o-1" and got["body"]["details"] == {"notional": "617200.00"}
    assert got["body"]["event_time"] == "2026-04-22T13:17:47+00:00" and "deliveries" not in got["body"]


def test_webhook_slack_format():
    with WebhookServer() as server:
        WebhookSink("slack", server.url, fmt="slack").deliver(alert())
        [got] = server.wait_for(1)
    assert got["body"] == {"text": "[CRITICAL] Large fill: AAPL\na-1 bought 5000 AAPL"}


def test_webhook_fails_twice_then_succeeds_and_delivers_once():
    with WebhookServer(script=[500, 503]) as server:
        delivery = WebhookSink("hook", server.url, **fast()).deliver(alert())
        received = server.wait_for(1)
        time.sleep(0.1)
    assert (delivery.status, delivery.attempts) == ("delivered", 3)
    assert server.attempts == 3 and len(received) == len(server.received) == 1


def test_webhook_gives_up_after_max_attempts_with_a_safe_error():
    with WebhookServer(default=500, path="/services/T000/B000/XYZsecretTOKEN") as server:
        sink = WebhookSink("hook", server.url, max_attempts=4, **fast())
        delivery = sink.deliver(alert())
    assert (delivery.status, delivery.attempts, delivery.error) == ("failed", 4, "HTTP 500")
    assert server.attempts == 4
    assert redact(f"posting to {server.url}") == "posting to ***"  # the URL is a registered secret


def test_webhook_client_errors_are_not_retried():
    with WebhookServer(default=404) as server:
        delivery = WebhookSink("hook", server.url, **fast()).deliver(alert())
    assert (delivery.status, delivery.attempts, delivery.error) == ("failed", 1, "HTTP 404")


def test_webhook_unreachable_and_timeout():
    url = f"http://127.0.0.1:{free_port()}/token-in-path-abcdef"
    delivery = WebhookSink("hook", url, max_attempts=2, **fast()).deliver(alert())
    assert (delivery.status, delivery.attempts, delivery.error) == ("failed", 2, "connection failed")
    with WebhookServer(delay_s=0.5) as server:
        started = time.monotonic()
        delivery = WebhookSink("hook", server.url, timeout_s=0.1, max_attempts=1).deliver(alert())
        assert time.monotonic() - started < 0.45
    assert (delivery.status, delivery.error) == ("failed", "timed out after 0.1s")


def test_backoff_doubles_and_is_capped():
    sink = WebhookSink("hook", "http://127.0.0.1:1/x", backoff_s=0.5, max_backoff_s=3)
    assert [sink.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3, 3]
    slept = []
    sink = WebhookSink("hook", f"http://127.0.0.1:{free_port()}/x", max_attempts=4, backoff_s=0.5, max_backoff_s=8,
                       sleep=slept.append)
    sink.deliver(alert())
    assert slept == [0.5, 1.0, 2.0]


def test_breaker_fails_fast_after_consecutive_failures_then_tries_again():
    now = [0.0]
    with WebhookServer(default=500) as server:
        sink = WebhookSink("hook", server.url, max_attempts=1, breaker_failures=2, breaker_s=30, clock=lambda: now[0])
        assert [sink.deliver(alert()).attempts for _ in range(2)] == [1, 1]
        skipped = sink.deliver(alert())
        assert (skipped.status, skipped.attempts) == ("failed", 0) and "paused" in skipped.error
        assert server.attempts == 2
        now[0] = 31
        server.default = 200
        assert sink.deliver(alert()).status == "delivered"
        assert sink.deliver(alert()).status == "delivered"


def test_email_over_smtp_with_login():
    with SmtpServer(username="alerts", password="s3cret-pw") as server:
        sink = EmailSink("mail", host="127.0.0.1", port=server.port, sender="tradebus@example.com",
                         to=("ops@example.com", "desk@example.com"), username="alerts", password="s3cret-pw",
                         starttls=False, use_ssl=False, timeout_s=5)
        delivery = sink.deliver(alert())
    assert (delivery.status, delivery.attempts) == ("delivered", 1)
    [msg] = server.messages
    assert msg["to"] == ["<ops@example.com>", "<desk@example.com>"]
    assert "Subject: [tradebus] [critical] Large fill: AAPL" in msg["data"]
    assert "a-1 bought 5000 AAPL" in msg["data"] and "notional: 617200.00" in msg["data"]


def test_email_refused_login_is_not_retried_and_never_shows_the_password():
    with SmtpServer(username="alerts", password="right-password") as server:
        sink = EmailSink("mail", host="127.0.0.1", port=server.port, sender="t@example.com", to=("o@example.com",),
                         username="alerts", password="wrong-password-1", starttls=False, use_ssl=False, **fast())
        delivery = sink.deliver(alert())
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert delivery.error == "SMTP authentication refused (535)" and "wrong-password" not in delivery.error
    assert server.messages == []


def test_email_starttls_required_but_not_offered_and_server_down():
    with SmtpServer() as server:
        sink = EmailSink("mail", host="127.0.0.1", port=server.port, sender="t@example.com", to=("o@example.com",),
                         username=None, password=None, starttls=True, use_ssl=False, **fast())
        delivery = sink.deliver(alert())
    assert (delivery.status, delivery.attempts) == ("failed", 1) and "STARTTLS" in delivery.error
    sink = EmailSink("mail", host="127.0.0.1", port=free_port(), sender="t@example.com", to=("o@example.com",),
                     username=None, password=None, starttls=False, use_ssl=False, timeout_s=1, max_attempts=2,
                     **fast())
    delivery = sink.deliver(alert())
    assert (delivery.status, delivery.attempts, delivery.error) == ("failed", 2, "SMTP ConnectionRefusedError")


RULES = """
sinks:
  hook: {type: webhook, format: slack, max_attempts: 5, backoff_seconds: 0.1}
  own-hook: {type: webhook, url_env: DESK_HOOK}
  mail: {type: email, to: [ops@example.com]}
rules:
  - {name: a, kind: gap_reported, sinks: [log, hook, own-hook, mail]}
"""


def test_build_sinks_from_the_file_and_the_environment():
    env = Env({
        "TRADEBUS_ALERTS_WEBHOOK_URL": "https://hooks.example.com/services/T1/B2/verysecrettoken",
        "DESK_HOOK": "https://desk.example.com/hook?token=abc123456",
        "TRADEBUS_ALERTS_SMTP_HOST": "smtp.example.com", "TRADEBUS_ALERTS_SMTP_FROM": "tb@example.com",
        "TRADEBUS_ALERTS_SMTP_USERNAME": "tb", "TRADEBUS_ALERTS_SMTP_PASSWORD": "smtp-password-xyz",
    })
    sinks = build_sinks(parse_rules(RULES, "r.yaml"), env)
    assert set(sinks) == {"log", "hook", "own-hook", "mail"}
    assert (sinks["hook"].fmt, sinks["hook"].max_attempts, sinks["hook"].backoff_s) == ("slack", 5, 0.1)
    assert sinks["own-hook"].url == "https://desk.example.com/hook?token=abc123456"
    mail = sinks["mail"]
    assert (mail.host, mail.port, mail.starttls, mail.sender, mail.to) == ("smtp.example.com", 587, True, "tb@example.com",
                                                                          ("ops@example.com",))
    text = "url https://hooks.example.com/services/T1/B2/verysecrettoken pw smtp-password-xyz"
    assert redact(text) == "url *** pw ***"


@pytest.mark.parametrize("environ,words", [
    ({"DESK_HOOK": "https://x/y", "TRADEBUS_ALERTS_SMTP_HOST": "h", "TRADEBUS_ALERTS_SMTP_FROM": "f@x"},
     ["sink 'hook'", "line 3", "TRADEBUS_ALERTS_WEBHOOK_URL"]),
    ({"TRADEBUS_ALERTS_WEBHOOK_URL": "https://x/y", "TRADEBUS_ALERTS_SMTP_HOST": "h", "TRADEBUS_ALERTS_SMTP_FROM": "f@x"},
     ["sink 'own-hook'", "DESK_HOOK"]),
    ({"TRADEBUS_ALERTS_WEBHOOK_URL": "https://x/y", "DESK_HOOK": "https://x/z", "TRADEBUS_ALERTS_SMTP_FROM": "f@x"},
     ["sink 'mail'", "TRADEBUS_ALERTS_SMTP_HOST"]),
    ({"TRADEBUS_ALERTS_WEBHOOK_URL": "ftp://x/y", "DESK_HOOK": "https://x/z"}, ["TRADEBUS_ALERTS_WEBHOOK_URL", "http"]),
])
def test_missing_sink_settings_fail_at_start(environ, words):
    with pytest.raises(ConfigError) as err:
        build_sinks(parse_rules(RULES, "r.yaml"), Env(environ))
    for word in words:
        assert word in str(err.value)
    assert "ftp://x/y" not in str(err.value)
