"""HTTP handlers of the three HTI endpoints (spec §§2-7).

Checks run in this order on every endpoint: injected outage (503), injected
throttling (429), API code missing/unknown (401), profile expired (403),
request budget (429), then parameters (422). Unknown paths are always 404.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from simulators.hti.config import HISTORY_LIMIT_RANGE, POLL_SECONDS_RANGE
from simulators.hti.profiles import Profile
from simulators.hti.sse import encode_event, json_data_lines, open_event_stream
from simulators.hti.stream import StreamSession
from simulators.hti.timefmt import iso_utc
from tradebus.redaction import redact

if TYPE_CHECKING:
    from simulators.hti.simulator import HtiSimulator

log = logging.getLogger("tradebus.sim.hti")

AUTH_PATH = "/client-api/hti/auth"
HISTORY_PATH = "/client-api/hti/history"
STREAM_PATH = "/client-api/hti/stream"
PATHS = (AUTH_PATH, HISTORY_PATH, STREAM_PATH)
_INTEGER = re.compile(r"[+-]?[0-9]+")


class _Refused(Exception):
    """A request was answered with an error; nothing more to do."""


class HtiRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for REST; the stream closes its connection
    # TCP_NODELAY, as SSE servers set it (nginx: tcp_nodelay on): with Nagle, an
    # event written while the previous one is unacknowledged waits for the
    # client's delayed ACK, up to 40 ms on Linux.
    disable_nagle_algorithm = True
    server_version = "hti-sim/1.0"
    timeout = 60  # idle keep-alive connections give their thread back

    server: "HtiHttpServer"

    def version_string(self) -> str:
        return self.server_version

    @property
    def sim(self) -> "HtiSimulator":
        return self.server.sim

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        try:
            if url.path == AUTH_PATH:
                self._auth()
            elif url.path == HISTORY_PATH:
                self._history(query)
            elif url.path == STREAM_PATH:
                self._stream(query)
            else:
                self._send_error(404, "Not Found")
        except _Refused:
            pass

    def _not_allowed(self) -> None:
        self.close_connection = True  # the request body, if any, is not read
        if urlsplit(self.path).path in PATHS:
            self._send_error(405, "Method Not Allowed", extra_headers={"Allow": "GET"})
        else:
            self._send_error(404, "Not Found")

    do_POST = do_PUT = do_PATCH = do_DELETE = _not_allowed  # noqa: N815

    # -- endpoints -----------------------------------------------------

    def _auth(self) -> None:
        profile = self._admit(self.headers.get("X-API-Code"))
        payload = {"status": "ok", "profile": profile.to_payload(iso_utc(time.time()))}
        self._send_json(200, payload)

    def _history(self, query: dict[str, list[str]]) -> None:
        profile = self._admit(self.headers.get("X-API-Code"))
        limit = self._limit_param(query)
        config = self.sim.config
        ideas = self.sim.hub.history(profile, limit, config.history_order)
        now = iso_utc(time.time())
        self._send_json(200, {"status": "ok", "profile": profile.to_payload(now), "count": len(ideas),
                              "limit": limit, "ideas": ideas, "served_at": now})

    def _stream(self, query: dict[str, list[str]]) -> None:
        codes = query.get("api_code")
        profile = self._admit(codes[-1] if codes else None, stream=True)
        poll_seconds = self._poll_param(query)
        StreamSession(self.sim, self, profile, poll_seconds).run()

    # -- checks --------------------------------------------------------

    def _admit(self, api_code: str | None, *, stream: bool = False) -> Profile:
        sim = self.sim
        if sim.faults.in_outage():
            self._refuse(503, "Service temporarily unavailable")
        throttled = sim.faults.throttle_remaining()
        if throttled is not None:
            self._refuse(429, "Request limit reached", retry_after=throttled)
        if not api_code:
            self._refuse(401, "Missing API code", stream=stream)
        profile = sim.profiles.lookup(api_code)
        if profile is None:
            self._refuse(401, "Invalid API code", stream=stream)
        if profile.is_expired():
            self._refuse(403, "API profile expired", stream=stream)
        if not stream or sim.config.count_stream_connects:
            wait = sim.limiter.check(api_code, profile.request_limit_per_minute)
            if wait is not None:
                self._refuse(429, "Request limit reached", retry_after=wait)
        return profile

    def _limit_param(self, query: dict[str, list[str]]) -> int:
        low, high = HISTORY_LIMIT_RANGE
        values = query.get("limit")
        if not values:
            return self.sim.config.default_history_limit
        message = f"limit must be an integer between {low} and {high}"
        if not _INTEGER.fullmatch(values[-1].strip()):
            self._refuse(422, message)
        limit = int(values[-1])
        if low <= limit <= high:
            return limit
        if self.sim.config.clamp_params:
            return min(high, max(low, limit))
        self._refuse(422, message)

    def _poll_param(self, query: dict[str, list[str]]) -> float:
        low, high = POLL_SECONDS_RANGE
        values = query.get("poll_seconds")
        if not values:
            return self.sim.config.default_poll_seconds
        message = f"poll_seconds must be a number between {low} and {high}"
        try:
            seconds = float(values[-1])
        except ValueError:
            seconds = math.nan
        if not math.isfinite(seconds):
            self._refuse(422, message)
        if low <= seconds <= high:
            return seconds
        if self.sim.config.clamp_params:
            return min(high, max(low, seconds))
        self._refuse(422, message)

    def _refuse(self, status: int, detail: str, *, retry_after: int | None = None, stream: bool = False) -> None:
        if stream and self.sim.config.stream_auth_errors == "event":
            writer = open_event_stream(self, self.sim.config.sse_framing)
            writer.write(encode_event("error", json_data_lines({"detail": detail})))
            writer.end()
        else:
            headers = {}
            if retry_after is not None and self.sim.config.retry_after_header:
                headers["Retry-After"] = str(retry_after)
            self._send_error(status, detail, extra_headers=headers)
        raise _Refused()

    # -- responses -----------------------------------------------------

    def _send_error(self, status: int, detail: str, extra_headers: dict[str, str] | None = None) -> None:
        style = self.sim.config.error_body
        if style == "text":
            self._send(status, detail.encode(), "text/plain; charset=utf-8", extra_headers)
        else:
            self._send_json(status, {style: detail}, extra_headers)

    def _send_json(self, status: int, payload: dict, extra_headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", extra_headers)

    def _send(self, status: int, body: bytes, content_type: str, extra_headers: dict[str, str] | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server signature)
        # The request line carries api_code for the stream: never log it.
        log.debug("%s %s", self.address_string(), redact(format % args))


class HtiHttpServer(ThreadingHTTPServer):
    daemon_threads = True  # open streams must not keep the process alive
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], sim: "HtiSimulator"):
        self.sim = sim
        super().__init__(address, HtiRequestHandler)

    def handle_error(self, request, client_address) -> None:
        log.debug("request from %s:%s ended with an error", *client_address[:2], exc_info=True)
