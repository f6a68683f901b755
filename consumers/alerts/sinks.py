"""Where alerts go: log (a JSON line on stdout), webhook (JSON POST, or a
Slack-compatible {"text": ...}), email (SMTP, optional STARTTLS).

A sink's send() is one attempt; deliver() wraps it in bounded retries with
exponential backoff and a circuit breaker, and always returns a Delivery
(delivered or failed) instead of raising: a failing sink never loses the
alert and never stops the worker. Errors recorded in a Delivery are built
from exception types and status codes, never from messages that could echo a
URL (webhook URLs carry tokens) or a credential, and are redacted on top.
"""

from __future__ import annotations

import json
import os
import smtplib
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any, Callable

import requests
from requests.adapters import HTTPAdapter

from consumers.alerts.rules import RuleSet, SinkSpec
from tradebus.config import ConfigError, Env
from tradebus.redaction import redact, register_secret

WEBHOOK_URL_ENV = "TRADEBUS_ALERTS_WEBHOOK_URL"
JSON_HEADERS = {"Content-Type": "application/json"}
SMTP_ENV = "TRADEBUS_ALERTS_SMTP_"


@dataclass
class Delivery:
    sink: str
    status: str  # delivered | failed
    attempts: int
    error: str | None = None

    def as_record(self) -> dict:
        return {"sink": self.sink, "status": self.status, "attempts": self.attempts, "error": self.error}


class SinkError(Exception):
    """One failed attempt; the message is safe to record. retry_after: seconds the server asked for."""

    def __init__(self, message: str, retryable: bool = True, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


def alert_json(alert: dict) -> dict:
    """The alert record as JSON-able values (timestamps in ISO 8601)."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in alert.items() if k != "deliveries"}


class Sink:
    type = "sink"
    blocking = True  # False: cheap enough to run on the consume loop itself

    def __init__(self, name: str, *, max_attempts: int = 3, backoff_s: float = 0.5, max_backoff_s: float = 8.0,
                 threads: int = 4, breaker_failures: int = 5, breaker_s: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        self.name = name
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.threads = threads
        self.breaker_failures = breaker_failures
        self.breaker_s = breaker_s
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self._consecutive_failures = 0
        self._open_until = 0.0

    def send(self, alert: dict) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def backoff(self, attempt: int) -> float:
        """Seconds before attempt+1: backoff_s, 2x, 4x, ... capped."""
        return min(self.max_backoff_s, self.backoff_s * (2 ** (attempt - 1)))

    def deliver(self, alert: dict) -> Delivery:
        """Bounded retries; never raises."""
        with self._lock:
            if self._clock() < self._open_until:
                # The sink has failed breaker_failures times in a row: fail fast
                # (attempts 0) instead of tying up threads, until the pause ends.
                return Delivery(self.name, "failed", 0, f"not attempted: sink failing ({self._consecutive_failures} "
                                                        f"consecutive failures), paused for {self.breaker_s:g}s")
        attempts, error = 0, "not attempted"
        while attempts < self.max_attempts:
            attempts += 1
            try:
                self.send(alert)
                with self._lock:
                    self._consecutive_failures = 0
                return Delivery(self.name, "delivered", attempts)
            except SinkError as exc:
                error = redact(str(exc))
                if not exc.retryable or attempts >= self.max_attempts:
                    break
                delay = self.backoff(attempts)
                if exc.retry_after is not None:
                    delay = min(self.max_backoff_s, max(delay, exc.retry_after))
                self._sleep(delay)
            except Exception as exc:  # a bug or an unexpected library error: recorded, not raised
                error = f"unexpected {type(exc).__name__}"
                break
        with self._lock:
            self._consecutive_failures += 1
            if self._consecutive_failures >= self.breaker_failures:
                self._open_until = self._clock() + self.breaker_s
        return Delivery(self.name, "failed", attempts, error)


class LogSink(Sink):
    """One JSON line per alert on stdout (logs go to stderr)."""

    type = "log"
    blocking = False

    def __init__(self, name: str = "log", stream=None):
        super().__init__(name, max_attempts=1, threads=1)
        self._stream = stream
        self._write_lock = threading.Lock()

    def send(self, alert: dict) -> None:
        line = redact(json.dumps({"alert": alert_json(alert)}, default=str, separators=(",", ":")))
        try:
            with self._write_lock:
                stream = self._stream or sys.stdout
                stream.write(line + "\n")
                stream.flush()
        except (OSError, ValueError) as exc:  # closed or broken stdout
            raise SinkError(f"stdout: {type(exc).__name__}", retryable=False) from None


class WebhookSink(Sink):
    """JSON POST of the alert, or {"text": ...} for Slack-compatible hooks.
    One keep-alive session per delivery thread."""

    type = "webhook"

    def __init__(self, name: str, url: str, *, fmt: str = "json", timeout_s: float = 5.0, **kw):
        super().__init__(name, **kw)
        register_secret(url)  # a hook URL is a credential (Slack puts the token in the path)
        self.url = url
        self.fmt = fmt
        self.timeout_s = timeout_s
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            # Proxy and CA settings from the environment are resolved once here:
            # with trust_env on, requests re-reads them (and ~/.netrc) on every
            # POST, a quarter of its CPU cost per alert.
            session.proxies = requests.utils.get_environ_proxies(self.url)
            session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
            session.trust_env = False
            session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0))
            session.mount("https://", HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0))
            self._local.session = session
        return session

    def payload(self, alert: dict) -> dict:
        if self.fmt == "slack":
            return {"text": f"[{alert['severity'].upper()}] {alert['title']}\n{alert['message']}"}
        return alert_json(alert)

    def send(self, alert: dict) -> None:
        try:
            body = json.dumps(self.payload(alert), separators=(",", ":"), default=str).encode()
            response = self._session().post(self.url, data=body, headers=JSON_HEADERS, allow_redirects=False,
                                            timeout=(min(self.timeout_s, 3.0), self.timeout_s))
        except requests.Timeout:
            raise SinkError(f"timed out after {self.timeout_s:g}s") from None
        except requests.ConnectionError:
            raise SinkError("connection failed") from None
        except requests.RequestException as exc:
            raise SinkError(f"request failed ({type(exc).__name__})") from None
        status = response.status_code
        response.close()
        if 200 <= status < 300:
            return
        retry_after = None
        if status in (429, 503):
            try:
                retry_after = float(response.headers.get("Retry-After", ""))
            except ValueError:
                pass
        raise SinkError(f"HTTP {status}", retryable=status >= 500 or status in (408, 425, 429), retry_after=retry_after)


class EmailSink(Sink):
    """A plain-text message per alert over SMTP (STARTTLS, or implicit TLS)."""

    type = "email"

    def __init__(self, name: str, *, host: str, port: int, sender: str, to: tuple[str, ...], username: str | None,
                 password: str | None, starttls: bool, use_ssl: bool, subject_prefix: str = "[tradebus]",
                 timeout_s: float = 10.0, **kw):
        kw.setdefault("threads", 2)
        super().__init__(name, **kw)
        self.host, self.port, self.sender, self.to = host, port, sender, to
        self.username, self._password = username, password
        self.starttls, self.use_ssl = starttls, use_ssl
        self.subject_prefix, self.timeout_s = subject_prefix, timeout_s

    def message(self, alert: dict) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = f"{self.subject_prefix} [{alert['severity']}] {alert['title']}".strip()
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        lines = [alert["message"], "", f"rule: {alert['rule']}", f"key: {alert['alert_key']}",
                 f"fired at: {alert['fired_at'].isoformat() if isinstance(alert['fired_at'], datetime) else alert['fired_at']}"]
        lines += [f"{k}: {v}" for k, v in sorted(alert.get("details", {}).items())]
        msg.set_content("\n".join(lines))
        return msg

    def send(self, alert: dict) -> None:
        smtp_class = smtplib.SMTP_SSL if self.use_ssl else smtplib.SMTP
        try:
            with smtp_class(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls and not self.use_ssl:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self._password or "")
                smtp.send_message(self.message(alert))
        except smtplib.SMTPAuthenticationError as exc:
            raise SinkError(f"SMTP authentication refused ({exc.smtp_code})", retryable=False) from None
        except smtplib.SMTPRecipientsRefused:
            raise SinkError("SMTP recipients refused", retryable=False) from None
        except smtplib.SMTPNotSupportedError:
            raise SinkError("SMTP server does not support STARTTLS or AUTH", retryable=False) from None
        except smtplib.SMTPResponseException as exc:
            raise SinkError(f"SMTP {exc.smtp_code}", retryable=400 <= exc.smtp_code < 500 or exc.smtp_code == 421) from None
        except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
            raise SinkError(f"SMTP {type(exc).__name__}") from None


# --------------------------------------------------------------- from config
def _common(options: dict[str, Any]) -> dict[str, Any]:
    mapping = {"max_attempts": "max_attempts", "backoff_seconds": "backoff_s", "max_backoff_seconds": "max_backoff_s",
               "threads": "threads", "breaker_failures": "breaker_failures", "breaker_seconds": "breaker_s"}
    return {mapping[k]: v for k, v in options.items() if k in mapping}


def _webhook(spec: SinkSpec, env: Env) -> WebhookSink:
    o = spec.options
    if "url" in o:
        url = o["url"]
        register_secret(url)
    else:
        variable = o.get("url_env", WEBHOOK_URL_ENV)
        url = env.str(variable, secret=True)
        if url is None:
            raise ConfigError(f"sink {spec.name!r} (rule file line {spec.line}): no webhook URL: "
                              f"set {variable} or give url: in the rule file")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{variable}: expected an http:// or https:// URL")
    return WebhookSink(spec.name, url, fmt=o.get("format", "json"), timeout_s=o.get("timeout_seconds", 5.0), **_common(o))


def _email(spec: SinkSpec, env: Env) -> EmailSink:
    o = spec.options
    where = f"sink {spec.name!r} (rule file line {spec.line})"

    def setting(key: str, variable: str):
        if key in o:
            return o[key]
        return env.str(SMTP_ENV + variable)

    host = setting("host", "HOST")
    sender = setting("from", "FROM")
    to = o.get("to") or tuple(env.list(SMTP_ENV + "TO"))
    for value, key, variable in ((host, "host", "HOST"), (sender, "from", "FROM"), (to, "to", "TO")):
        if not value:
            raise ConfigError(f"{where}: no SMTP {key}: give {key}: in the rule file or set {SMTP_ENV}{variable}")
    use_ssl = o["ssl"] if "ssl" in o else env.bool(SMTP_ENV + "SSL", False)
    port = o["port"] if "port" in o else env.int(SMTP_ENV + "PORT", 465 if use_ssl else 587, min=1, max=65535)
    starttls = o["starttls"] if "starttls" in o else env.bool(SMTP_ENV + "STARTTLS", not use_ssl)
    password = env.str(SMTP_ENV + "PASSWORD", secret=True)
    return EmailSink(
        spec.name, host=host, port=port, sender=sender, to=tuple(to), username=setting("username", "USERNAME"),
        password=password, starttls=starttls, use_ssl=use_ssl, subject_prefix=o.get("subject_prefix", "[tradebus]"),
        timeout_s=o.get("timeout_seconds", 10.0), **_common(o),
    )


def build_sinks(ruleset: RuleSet, env: Env) -> dict[str, Sink]:
    """The sinks the enabled rules use; a missing setting is a ConfigError."""
    env.str(WEBHOOK_URL_ENV, secret=True)  # registered for redaction even when no sink uses them
    env.str(SMTP_ENV + "PASSWORD", secret=True)
    sinks: dict[str, Sink] = {}
    for spec in ruleset.used_sinks():
        if spec.type == "log":
            sinks[spec.name] = LogSink(spec.name)
        elif spec.type == "webhook":
            sinks[spec.name] = _webhook(spec, env)
        else:
            sinks[spec.name] = _email(spec, env)
    return sinks
