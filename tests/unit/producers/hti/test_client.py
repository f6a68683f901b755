"""HtiClient against a scripted HTTP server: error mapping, error bodies,
Retry-After, the stream's Content-Type, chunk reading, and the code kept
out of every message."""

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from producers.hti.client import (
    AuthRejected, HtiClient, RateLimited, RequestRefused, StreamEnded, StreamStalled, TransientError, _detail,
)
from producers.hti.pacing import TokenBucket
from producers.hti.settings import HtiProducerSettings
from tradebus.redaction import register_secret

CODE = "client-code-93ac51e2"
register_secret(CODE)


class Script:
    """What the stub answers: (status, headers, body or list of chunks with pauses)."""

    def __init__(self):
        self.answers = {}
        self.requests = []


def make_server(script: Script):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802
            path = self.path.split("?")[0]
            script.requests.append((self.path, dict(self.headers)))
            status, headers, body = script.answers[path]
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if isinstance(body, list):  # chunked, with pauses between chunks
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for part in body:
                    if isinstance(part, float):
                        time.sleep(part)
                        continue
                    self.wfile.write(b"%X\r\n%s\r\n" % (len(part), part))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            self.close_connection = True

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def stub():
    script = Script()
    server = make_server(script)
    script.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield script
    server.shutdown()
    server.server_close()


def client_for(url, **overrides):
    settings = HtiProducerSettings(server_url=url, api_code=CODE, connect_timeout_s=1.0, request_timeout_s=2.0, **overrides)
    return HtiClient(settings, TokenBucket(600), threading.Event())


JSON = {"Content-Type": "application/json"}
SSE = {"Content-Type": "text/event-stream"}


def test_auth_sends_the_header_and_reads_the_profile(stub):
    stub.answers["/client-api/hti/auth"] = (200, JSON, b'{"status":"ok","profile":{"account_name":"A","request_limit_per_minute":30}}')
    client = client_for(stub.url)
    assert client.authenticate()["account_name"] == "A"
    assert client.limiter.limit_per_minute == 30
    path, headers = stub.requests[0]
    assert headers["X-API-Code"] == CODE and headers["Accept"] == "application/json" and "api_code" not in path


@pytest.mark.parametrize("status,body,error,text", [
    (401, b'{"detail": "Invalid API code"}', AuthRejected, "HTTP 401, invalid or missing: Invalid API code"),
    (403, b'{"message": "API profile expired"}', AuthRejected, "HTTP 403, expired or invalid profile: API profile expired"),
    (401, b"<html>nope</html>", AuthRejected, "<html>nope</html>"),
    (404, b'{"detail": "Not Found"}', RequestRefused, "HTTP 404: Not Found"),
    (422, b'{"detail": [{"loc": ["limit"]}]}', RequestRefused, 'HTTP 422: [{"loc": ["limit"]}]'),
    (503, b"", TransientError, "HTTP 503: (empty body)"),
    (408, b"slow", TransientError, "HTTP 408: slow"),
])
def test_error_statuses_are_sorted(stub, status, body, error, text):
    stub.answers["/client-api/hti/auth"] = (status, JSON, body)
    with pytest.raises(error) as info:
        client_for(stub.url).authenticate()
    assert text in str(info.value)


def test_429_with_and_without_retry_after(stub):
    stub.answers["/client-api/hti/history"] = (429, {**JSON, "Retry-After": "7"}, b'{"detail": "Request limit reached"}')
    client = client_for(stub.url)
    with pytest.raises(RateLimited) as info:
        client.history(50)
    assert info.value.retry_after_s == 7.0
    assert client.limiter.try_acquire() > 0  # our budget is drained too
    stub.answers["/client-api/hti/history"] = (429, JSON, b"{}")
    with pytest.raises(RateLimited) as info:
        client_for(stub.url).history(5)
    assert info.value.retry_after_s is None
    assert stub.requests[-1][0].endswith("limit=5")


def test_error_detail_never_shows_the_code():
    assert CODE not in _detail(f'{{"detail": "code {CODE} unknown"}}'.encode())
    assert _detail(b"x" * 10000).endswith("x") and len(_detail(b"x" * 10000)) == 300


def test_stream_reads_chunks_as_they_come(stub):
    stub.answers["/client-api/hti/stream"] = (200, SSE, [b"retry: 3000\n\nevent: ready\ndata: {}\n\n", 0.3,
                                                        b"event: ping\r\n", b"data: {}\r\n\r\n"])
    stream = client_for(stub.url).open_stream(2.0, 5.0)
    path, headers = stub.requests[0]
    assert f"api_code={CODE}" in path and "poll_seconds=2.0" in path and "X-API-Code" not in headers
    assert headers["Accept"] == "text/event-stream"
    assert CODE not in stream.url and "api_code=***" in stream.url
    started = time.monotonic()
    assert [e.event for e in stream.read_events()] == ["ready"]
    assert time.monotonic() - started < 0.25  # not waiting for a full buffer
    events = []
    while not events:
        events = stream.read_events()
    assert [e.event for e in events] == ["ping"] and stream.parser.retry_ms == 3000
    with pytest.raises(StreamEnded, match="ended by the server"):
        stream.read_events()


def test_stream_silence_is_a_stall(stub):
    stub.answers["/client-api/hti/stream"] = (200, SSE, [b"event: ready\ndata: {}\n\n", 3.0, b": late\n"])
    stream = client_for(stub.url).open_stream(1.0, 1.0)
    stream.read_events()
    started = time.monotonic()
    with pytest.raises(StreamStalled, match="no data from the stream for 1s"):
        stream.read_events()
    assert 0.8 < time.monotonic() - started < 2.5
    stream.close()


def test_abort_wakes_a_blocked_read(stub):
    stub.answers["/client-api/hti/stream"] = (200, SSE, [b"event: ready\ndata: {}\n\n", 5.0])
    stream = client_for(stub.url).open_stream(1.0, 10.0)
    stream.read_events()
    threading.Timer(0.3, stream.abort).start()
    started = time.monotonic()
    with pytest.raises(StreamEnded, match="closed by the producer"):
        stream.read_events()
    assert time.monotonic() - started < 2


def test_stream_must_be_an_event_stream(stub):
    stub.answers["/client-api/hti/stream"] = (200, JSON, b"{}")
    with pytest.raises(TransientError, match="expected text/event-stream"):
        client_for(stub.url).open_stream(2.0, 5.0)


def test_stream_auth_error_status(stub):
    stub.answers["/client-api/hti/stream"] = (401, JSON, b'{"detail": "Invalid API code"}')
    with pytest.raises(AuthRejected, match="on stream"):
        client_for(stub.url).open_stream(2.0, 5.0)


def test_connection_errors_are_transient_and_redacted():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens after the with block
    client = client_for(f"http://127.0.0.1:{port}")
    for call in (client.authenticate, lambda: client.open_stream(2.0, 5.0)):
        with pytest.raises(TransientError) as info:
            call()
        assert CODE not in str(info.value) and info.value.__cause__ is None and info.value.__suppress_context__
    assert "ConnectionError" in str(info.value)
