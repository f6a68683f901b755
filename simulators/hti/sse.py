"""Server-sent events framing.

Over HTTP/1.1 the stream is sent with chunked transfer encoding, as
uvicorn/Starlette and most SSE servers do; HTTP/1.0 clients (and
``--sse-framing close``) get a body delimited by closing the connection,
which a raw-socket reader can read line by line.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler

RETRY_LINE = b"retry: 3000\n\n"
KEEP_ALIVE_COMMENT = b": keep-alive\n\n"


def encode_event(event: str, data_lines: list[str], event_id: int | None = None) -> bytes:
    lines = [f"id: {event_id}"] if event_id is not None else []
    lines.append(f"event: {event}")
    lines.extend(f"data: {line}" for line in data_lines)
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def json_data_lines(value, multiline: bool = False) -> list[str]:
    """JSON as ``data:`` lines; multi-line JSON breaks only between tokens, so joining with newlines restores it."""
    if multiline:
        return json.dumps(value, indent=2).split("\n")
    return [json.dumps(value)]


class SseWriter:
    def __init__(self, wfile, chunked: bool):
        self._wfile = wfile
        self.chunked = chunked

    def write(self, payload: bytes) -> None:
        if not payload:
            return  # an empty chunk would end a chunked body
        if self.chunked:
            payload = b"%X\r\n%s\r\n" % (len(payload), payload)
        self._wfile.write(payload)
        self._wfile.flush()

    def end(self) -> None:
        """Ends the body cleanly (a dropped stream skips this)."""
        if self.chunked:
            self._wfile.write(b"0\r\n\r\n")
            self._wfile.flush()


def open_event_stream(handler: BaseHTTPRequestHandler, framing: str = "chunked") -> SseWriter:
    chunked = framing == "chunked" and handler.request_version == "HTTP/1.1"
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Cache-Control", "no-cache")
    handler.send_header("X-Accel-Buffering", "no")  # tells proxies not to buffer the stream
    handler.send_header("Connection", "close")
    if chunked:
        handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    handler.close_connection = True
    return SseWriter(handler.wfile, chunked)
