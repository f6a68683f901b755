"""Keeps secrets (API codes, API keys, SASL and database passwords) out of
logs, error messages, metrics and tracebacks.

Two layers: every secret value read by the configuration is registered here
and replaced wherever it appears; and URL shapes that carry credentials
(``api_code=`` in the HTI stream URL, ``user:password@`` in database URLs) are
masked even when the value was never registered.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
_SECRET_QUERY_KEYS = {"api_code", "apikey", "api_key", "token", "password", "access_token", "key"}
_QUERY_PATTERN = re.compile(r"(?i)\b(api_code|api_key|apikey|access_token|token|password)=([^&\s\"']+)")
_USERINFO_PATTERN = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+):([^@\s/]+)@")
_HEADER_PATTERN = re.compile(r"(?i)\b(x-api-key|x-api-code|authorization)(['\"]?\s*[:=,]\s*['\"]?)([^\s'\",)]+)")

_lock = threading.Lock()
_secrets: list[str] = []


def register_secret(value: str | None) -> None:
    """Remember a secret so that redact() replaces it everywhere."""
    if not value or len(value) < 4:
        return  # too short to mask without destroying ordinary text
    with _lock:
        if value not in _secrets:
            _secrets.append(value)
            _secrets.sort(key=len, reverse=True)  # longest first: a secret may contain another


def registered_secrets() -> list[str]:
    with _lock:
        return list(_secrets)


def redact(text: str) -> str:
    """Mask registered secrets and credential-shaped substrings."""
    if not text:
        return text
    for secret in registered_secrets():
        if secret in text:
            text = text.replace(secret, MASK)
    text = _QUERY_PATTERN.sub(lambda m: f"{m.group(1)}={MASK}", text)
    text = _USERINFO_PATTERN.sub(lambda m: f"{m.group(1)}:{MASK}@", text)
    text = _HEADER_PATTERN.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return text


def redact_url(url: str) -> str:
    """A URL safe to log: secret query parameters and passwords masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url)
    if not parts.password and not parts.query:
        return redact(url)
    netloc = parts.netloc
    if parts.password:
        netloc = netloc.replace(f":{parts.password}@", f":{MASK}@")
    query = urlencode(
        [(k, MASK if k.lower() in _SECRET_QUERY_KEYS else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)],
        safe="*",
    )
    return redact(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))
