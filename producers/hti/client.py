"""HTTP client for the three HTI endpoints (spec §1.1): /auth and /history
with the ``X-API-Code`` header, /stream with ``api_code`` in the query.

Every request first takes a token from the client-side budget. Failures are
sorted by what the caller should do:

- ``AuthRejected`` (401/403): the code is wrong or expired; never retried.
- ``RequestRefused`` (other 4xx but 408/429): our request is wrong; retrying
  as it is will not help.
- ``RateLimited`` (429): wait for Retry-After when given, else back off.
- ``TransientError`` (5xx, 408, connection errors, timeouts, a stream that is
  not an event stream): back off and retry.

No message carries the API code: it is registered as a secret, URLs are
logged through ``redact_url`` and exception texts through ``redact``, and
requests' own exceptions are not chained (``from None``).
"""

from __future__ import annotations

import json
import logging
import threading

import requests
import urllib3.exceptions

from producers.hti.pacing import TokenBucket, retry_after_seconds
from producers.hti.settings import HtiProducerSettings
from producers.hti.sse import SseEvent, SseParser
from tradebus.redaction import redact, redact_url

log = logging.getLogger(__name__)

AUTH_PATH = "/client-api/hti/auth"
HISTORY_PATH = "/client-api/hti/history"
STREAM_PATH = "/client-api/hti/stream"
READ_SIZE = 65536
ERROR_BODY_LIMIT = 4096


class HtiError(RuntimeError):
    pass


class Stopped(HtiError):
    """The stop flag was set while waiting to send a request."""


class AuthRejected(HtiError):
    def __init__(self, status: int, endpoint: str, detail: str):
        self.status = status
        self.endpoint = endpoint
        what = "invalid or missing" if status == 401 else "expired or invalid profile"
        super().__init__(f"HTI API rejected the API code on {endpoint} (HTTP {status}, {what}: {detail}); "
                         "check TRADEBUS_HTI_API_CODE or renew the profile")


class RequestRefused(HtiError):
    def __init__(self, status: int, endpoint: str, detail: str):
        self.status = status
        super().__init__(f"HTI API refused the request to {endpoint} (HTTP {status}: {detail}); "
                         "check TRADEBUS_HTI_SERVER_URL and the HTI settings")


class RateLimited(HtiError):
    def __init__(self, endpoint: str, retry_after_s: float | None):
        self.retry_after_s = retry_after_s
        hint = f"Retry-After {retry_after_s:g}s" if retry_after_s is not None else "no Retry-After"
        super().__init__(f"HTI API request limit reached on {endpoint} (HTTP 429, {hint})")


class TransientError(HtiError):
    pass


class StreamStalled(TransientError):
    pass


class StreamEnded(TransientError):
    pass


def _detail(body: bytes) -> str:
    """The error text the provider's client shows: ``detail``, then ``message``, then the raw body."""
    text = body[:ERROR_BODY_LIMIT].decode("utf-8", errors="replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        for key in ("detail", "message"):
            if parsed.get(key) is not None:
                text = parsed[key] if isinstance(parsed[key], str) else json.dumps(parsed[key])
                break
    text = " ".join(text.split())
    return redact(text[:300] or "(empty body)")


def _transport_error(endpoint: str, exc: BaseException) -> TransientError:
    return TransientError(f"{endpoint}: {type(exc).__name__}: {redact(str(exc))}")


class EventStream:
    """An open /stream response read as SSE events, chunk by chunk.

    ``read_events`` uses ``raw.read1``: it returns whatever bytes have arrived
    (one HTTP chunk, or what is in the socket for a close-delimited body),
    while ``iter_content`` would wait for a full buffer on a body without
    chunked framing. The socket's read timeout is the stall limit.
    """

    def __init__(self, response: requests.Response, stall_s: float):
        self.response = response
        self.stall_s = stall_s
        self.parser = SseParser()
        self.url = redact_url(response.url)
        self._aborted = threading.Event()

    def read_events(self) -> list[SseEvent]:
        try:
            chunk = self.response.raw.read1(READ_SIZE)
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
            raise StreamStalled(f"no data from the stream for {self.stall_s:g}s") from None
        except (urllib3.exceptions.HTTPError, requests.RequestException, OSError, ValueError) as exc:
            if self._aborted.is_set():
                raise StreamEnded("stream closed by the producer") from None
            raise _transport_error("stream", exc) from None
        if not chunk:
            if self._aborted.is_set():
                raise StreamEnded("stream closed by the producer")
            raise StreamEnded("stream ended by the server")
        return self.parser.feed(chunk)

    def abort(self) -> None:
        """From another thread: wake a blocked read (shutdown) and close."""
        self._aborted.set()
        try:
            self.response.raw.shutdown()
        except Exception:  # already released or closed: nothing is blocked on it
            pass

    def close(self) -> None:
        self._aborted.set()
        try:
            self.response.close()
        except Exception:  # closing a broken connection can raise; it is closed either way
            pass


class HtiClient:
    def __init__(self, settings: HtiProducerSettings, limiter: TokenBucket, stop: threading.Event,
                 session: requests.Session | None = None):
        self.settings = settings
        self.base_url = settings.server_url.rstrip("/")
        self.limiter = limiter
        self.stop = stop
        self.session = session or requests.Session()

    def _headers(self, accept: str) -> dict[str, str]:
        return {"X-API-Code": self.settings.api_code, "Accept": accept, "Accept-Encoding": "identity"}

    def _take_token(self) -> None:
        if not self.limiter.acquire(self.stop):
            raise Stopped("stopping")

    def _check(self, response: requests.Response, endpoint: str, body: bytes) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        if status in (401, 403):
            raise AuthRejected(status, endpoint, _detail(body))
        if status == 429:
            self.limiter.drain()
            raise RateLimited(endpoint, retry_after_seconds(response.headers.get("Retry-After")))
        if status >= 500 or status == 408:
            raise TransientError(f"{endpoint}: HTTP {status}: {_detail(body)}")
        raise RequestRefused(status, endpoint, _detail(body))

    def _get_json(self, path: str, params: dict | None, endpoint: str) -> bytes:
        self._take_token()
        try:
            response = self.session.get(
                self.base_url + path, params=params, headers=self._headers("application/json"),
                timeout=(self.settings.connect_timeout_s, self.settings.request_timeout_s),
            )
            body = response.content
        except requests.RequestException as exc:
            raise _transport_error(endpoint, exc) from None
        self._check(response, endpoint, body)
        return body

    def authenticate(self) -> dict:
        """The profile; raises AuthRejected for a bad or expired code."""
        body = self._get_json(AUTH_PATH, None, "auth")
        try:
            payload = json.loads(body)
        except ValueError:
            raise TransientError("auth: the response is not JSON") from None
        profile = payload.get("profile") if isinstance(payload, dict) else None
        if not isinstance(profile, dict):
            raise TransientError("auth: the response has no profile object")
        self.apply_profile(profile)
        return profile

    def apply_profile(self, profile: dict) -> None:
        limit = profile.get("request_limit_per_minute")
        if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 and limit != self.limiter.limit_per_minute:
            self.limiter.configure(limit)
            log.info("HTI request budget: %d requests per minute", limit)

    def history(self, limit: int) -> bytes:
        """The raw /history body (parsed by the caller, so bad data can be dead-lettered whole)."""
        return self._get_json(HISTORY_PATH, {"limit": limit}, "history")

    def open_stream(self, poll_seconds: float, stall_s: float) -> EventStream:
        self._take_token()
        headers = self._headers("text/event-stream")
        del headers["X-API-Code"]  # the stream takes the code in the query string (spec §2.1)
        try:
            response = self.session.get(
                self.base_url + STREAM_PATH, params={"api_code": self.settings.api_code, "poll_seconds": poll_seconds},
                headers=headers, stream=True, timeout=(self.settings.connect_timeout_s, stall_s),
            )
        except requests.RequestException as exc:
            raise _transport_error("stream", exc) from None
        if not 200 <= response.status_code < 300:
            try:
                body = response.raw.read(ERROR_BODY_LIMIT)
            except Exception:  # the body of an error answer is a nicety
                body = b""
            finally:
                response.close()
            self._check(response, "stream", body)
        content_type = response.headers.get("Content-Type", "")
        if not content_type.lower().startswith("text/event-stream"):
            response.close()
            raise TransientError(f"stream: expected text/event-stream, got {content_type or 'no Content-Type'!r}")
        return EventStream(response, stall_s)

    def close(self) -> None:
        self.session.close()
