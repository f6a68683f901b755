"""The HTI simulator over real HTTP, checked the way the official client and
our producer talk to it. In-process, on a free port; no Kafka needed."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import socket
import threading
import time
from dataclasses import dataclass

import pytest
import requests

from simulators.hti import HtiSimulator, Profile, SimConfig, unlimited_profile

AUTH = "/client-api/hti/auth"
HISTORY = "/client-api/hti/history"
STREAM = "/client-api/hti/stream"
ALL = "code-all-140b17o794rA680"
ETF_BUY = "code-etf-buy-1Ba16t168C566"
EXPIRED = "code-expired-0003"
TIGHT = "code-tight-0004"  # 3 requests per minute
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
PROFILE_KEYS = ["account_name", "api_code", "validity_type", "valid_until", "request_limit_per_minute", "filters",
                "authenticated_at"]
FILTER_KEYS = ["asset_classes", "timeframes", "instruments", "prefixes", "sides"]


def profiles() -> list[Profile]:
    return [
        unlimited_profile(ALL, "NEW ACCOUNT 03"),
        Profile(api_code=ETF_BUY, account_name="ETF BUYER", request_limit_per_minute=600,
                filters={"asset_classes": ["ETFS"], "sides": ["Buy"]}),
        Profile(api_code=EXPIRED, account_name="LAPSED", validity_type="date", valid_until="2020-01-31"),
        Profile(api_code=TIGHT, account_name="TIGHT", request_limit_per_minute=3),
    ]


@pytest.fixture
def start_sim():
    started = []

    def start(**overrides) -> HtiSimulator:
        config = SimConfig(profiles=profiles(), port=0, rate=0, seed=1234, ping_seconds=0.2)
        for key, value in overrides.items():
            setattr(config, key, value)
        sim = HtiSimulator(config).start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def sim(start_sim) -> HtiSimulator:
    return start_sim()


def get(sim, path, code=ALL, **params) -> requests.Response:
    headers = {"Accept": "application/json"}
    if code is not None:
        headers["X-API-Code"] = code
    return requests.get(sim.base_url + path, headers=headers, params=params, timeout=5)


def open_stream(sim, code=ALL, poll_seconds=1.0) -> requests.Response:
    params = {"poll_seconds": poll_seconds}
    if code is not None:
        params["api_code"] = code
    return requests.get(sim.base_url + STREAM, params=params, headers={"Accept": "text/event-stream"},
                        stream=True, timeout=(5, 5))


@dataclass
class Event:
    name: str
    data: str
    id: str | None

    def json(self):
        return json.loads(self.data)


class SseReader:
    """A conforming SSE parser over requests' iter_lines; keeps the raw lines."""

    def __init__(self, response: requests.Response, chunk_size: int = 512, within: float = 10.0):
        self.raw: list[str] = []
        self._deadline = time.monotonic() + within  # pings keep a stream alive: bound every wait
        self._events = self._parse(response.iter_lines(chunk_size=chunk_size, decode_unicode=True))

    def _parse(self, lines):
        name, data, event_id = "message", [], None
        for line in lines:
            assert time.monotonic() < self._deadline, "stream did not deliver in time"
            self.raw.append(line)
            if line == "":
                if data:
                    yield Event(name, "\n".join(data), event_id)
                name, data, event_id = "message", [], None
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
            elif field == "id":
                event_id = value

    def next(self) -> Event:
        return next(self._events)

    def next_named(self, name: str) -> Event:
        return next(e for e in self._events if e.name == name)

    def ideas(self, count: int) -> list[Event]:
        """The next ``count`` idea events, skipping pings."""
        found = []
        for event in self._events:
            if event.name == "idea":
                found.append(event)
                if len(found) == count:
                    break
        return found

    def rest(self) -> list[Event]:
        return list(self._events)


def raw_stream(sim, http_version="HTTP/1.0", code=ALL) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", sim.port), timeout=5)
    sock.sendall(f"GET {STREAM}?api_code={code}&poll_seconds=1 {http_version}\r\nHost: sim\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    return sock


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def drain(sock: socket.socket, quiet: float = 0.2) -> bytes:
    sock.settimeout(quiet)
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except socket.timeout:
        pass
    return data


def ledger_ideas(sim) -> list[dict]:
    return [e for e in sim.ledger_entries() if e["kind"] == "idea"]


def assert_error(response, status, detail_pattern=".+"):
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == ["detail"] and re.fullmatch(detail_pattern, body["detail"])


def wait_until(condition, timeout=3.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# -- REST --------------------------------------------------------------------


def test_auth_shape_and_headers(sim):
    response = get(sim, AUTH)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == ["status", "profile"] and body["status"] == "ok"
    profile = body["profile"]
    assert list(profile) == PROFILE_KEYS
    assert profile["account_name"] == "NEW ACCOUNT 03" and profile["api_code"] == ALL
    assert profile["validity_type"] == "unlimited" and profile["valid_until"] is None
    assert profile["request_limit_per_minute"] == 600
    assert profile["filters"] == {key: [] for key in FILTER_KEYS} and list(profile["filters"]) == FILTER_KEYS
    assert ISO_Z.match(profile["authenticated_at"])
    filtered = get(sim, AUTH, code=ETF_BUY).json()["profile"]["filters"]
    assert filtered["asset_classes"] == ["ETFS"] and filtered["sides"] == ["Buy"]


def test_auth_errors(sim):
    assert_error(get(sim, AUTH, code=None), 401)
    assert_error(get(sim, AUTH, code="not-a-code"), 401)
    assert_error(get(sim, AUTH, code=ALL.upper()), 401)  # codes are case-sensitive
    assert_error(get(sim, AUTH, code=EXPIRED), 403)
    assert_error(get(sim, HISTORY, code=EXPIRED), 403)
    # The stream takes the code in the query only; a header is not enough.
    assert_error(requests.get(sim.base_url + AUTH, params={"api_code": ALL}, timeout=5), 401)


def test_request_budget_gives_429_with_retry_after(sim):
    for _ in range(3):
        assert get(sim, AUTH, code=TIGHT).status_code == 200
    over = get(sim, HISTORY, code=TIGHT)
    assert_error(over, 429)
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    with open_stream(sim, code=TIGHT) as stream:  # stream connects count too
        assert_error(stream, 429)
    assert get(sim, AUTH).status_code == 200  # other codes are unaffected


def test_429_without_retry_after_when_switched_off(start_sim):
    sim = start_sim(retry_after_header=False)
    for _ in range(3):
        get(sim, AUTH, code=TIGHT)
    response = get(sim, AUTH, code=TIGHT)
    assert_error(response, 429)
    assert "Retry-After" not in response.headers


def test_injected_429_and_503_at_run_time(sim):
    sim.fail_429(30)
    for path in (AUTH, HISTORY):
        response = get(sim, path)
        assert_error(response, 429)
        assert 1 <= int(response.headers["Retry-After"]) <= 30
    with open_stream(sim) as stream:
        assert_error(stream, 429)
    sim.fail_429(0)
    sim.fail_5xx(30)
    for path in (AUTH, HISTORY):
        assert_error(get(sim, path), 503)
    with open_stream(sim) as stream:
        assert_error(stream, 503)
    sim.fail_5xx(0)
    assert get(sim, AUTH).status_code == 200


def test_outage_from_start_ends_by_itself(start_sim):
    sim = start_sim(fail_5xx_for=0.6)
    assert_error(get(sim, AUTH), 503)
    assert wait_until(lambda: get(sim, AUTH).status_code == 200)


def test_unknown_path_and_wrong_method(sim):
    for path in ("/client-api/hti/nope", "/", "/client-api/hti/auth/"):
        response = requests.get(sim.base_url + path, timeout=5)
        assert response.status_code == 404 and response.json() == {"detail": "Not Found"}
    response = requests.post(sim.base_url + AUTH, headers={"X-API-Code": ALL}, timeout=5)
    assert response.status_code == 405 and response.json() == {"detail": "Method Not Allowed"}


@pytest.mark.parametrize("style", ["message", "text"])
def test_other_error_body_styles(start_sim, style):
    response = get(start_sim(error_body=style), AUTH, code="wrong")
    assert response.status_code == 401
    if style == "message":
        assert list(response.json()) == ["message"]
    else:
        assert response.headers["Content-Type"].startswith("text/plain") and response.text


# -- history -----------------------------------------------------------------


def test_history_shape_limit_and_latest_versions(sim):
    sim.emit_burst(150)
    default = get(sim, HISTORY).json()
    assert list(default) == ["status", "profile", "count", "limit", "ideas", "served_at"]
    assert default["status"] == "ok" and list(default["profile"]) == PROFILE_KEYS
    assert (default["count"], default["limit"], len(default["ideas"])) == (10, 10, 10)
    assert ISO_Z.match(default["served_at"])

    body = get(sim, HISTORY, limit=50).json()
    ideas = body["ideas"]
    assert body["count"] == len(ideas) == body["limit"] == 50
    ids = [i["idea_id"] for i in ideas]
    assert len(set(ids)) == 50  # one row per idea
    stamps = [i["LAST_UPDATE"] for i in ideas]
    assert stamps == sorted(stamps, reverse=True)  # newest first
    latest = {e["idea_id"]: json.loads(e["json"]) for e in ledger_ideas(sim)}
    assert all(idea == latest[idea["idea_id"]] for idea in ideas)  # the latest version of each


@pytest.mark.parametrize("limit", ["0", "51", "-1", "abc", "1.5", ""])
def test_history_limit_out_of_range_is_422(sim, limit):
    assert_error(get(sim, HISTORY, limit=limit), 422, r"limit must be .*")


@pytest.mark.parametrize(("asked", "effective"), [("0", 1), ("500", 50), ("7", 7)])
def test_history_limit_clamped_when_switched(start_sim, asked, effective):
    sim = start_sim(clamp_params=True)
    sim.emit_burst(80)
    body = get(sim, HISTORY, limit=asked).json()
    assert body["limit"] == effective and body["count"] == len(body["ideas"]) == effective


def test_history_applies_the_profile_filters(sim):
    sim.emit_burst(300)
    body = get(sim, HISTORY, code=ETF_BUY, limit=50).json()
    matching = {e["idea_id"] for e in ledger_ideas(sim)
                if json.loads(e["json"])["ASSET_CLASS"] == "ETFS" and json.loads(e["json"])["SIDE"] == "Buy"}
    assert body["count"] == min(50, len(matching)) > 0
    assert all(i["ASSET_CLASS"] == "ETFS" and i["SIDE"] == "Buy" for i in body["ideas"])


def test_history_empty_before_any_idea(sim):
    body = get(sim, HISTORY).json()
    assert (body["count"], body["ideas"]) == (0, [])


def test_history_by_creation_time_and_bounded_size(start_sim):
    sim = start_sim(history_order="creation_time", history_size=20)
    sim.emit_burst(100)
    body = get(sim, HISTORY, limit=50).json()
    assert body["count"] == 20
    created = [i["CREATION_TIME"] for i in body["ideas"]]
    assert created == sorted(created, reverse=True)


def test_extra_field_reaches_clients(start_sim):
    sim = start_sim(extra_field=True)
    sim.emit_burst(3)
    assert all(isinstance(i["RISK_SCORE"], int) for i in get(sim, HISTORY).json()["ideas"])


# -- stream ------------------------------------------------------------------


def test_stream_ready_first_then_pings(sim):
    with open_stream(sim, poll_seconds=2) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        assert response.headers["Cache-Control"] == "no-cache"
        reader = SseReader(response)
        ready = reader.next()
        assert ready.name == "ready"
        data = ready.json()
        assert list(data) == ["connected_at", "poll_seconds", "profile"]
        assert ISO_Z.match(data["connected_at"]) and data["poll_seconds"] == 2.0
        assert list(data["profile"]) == PROFILE_KEYS and data["profile"]["api_code"] == ALL
        started = time.monotonic()
        pings = [reader.next(), reader.next(), reader.next()]
        assert [p.name for p in pings] == ["ping"] * 3
        assert all(list(p.json()) == ["ts"] and ISO_Z.match(p.json()["ts"]) for p in pings)
        assert time.monotonic() - started < 2.0  # every --ping-seconds (0.2 here)
        assert reader.raw[0] == "retry: 3000" and ": keep-alive" in reader.raw


def test_ping_interval_defaults_to_poll_seconds(start_sim):
    sim = start_sim(ping_seconds=None)
    with open_stream(sim, poll_seconds=1) as response:
        reader = SseReader(response)
        reader.next()
        started = time.monotonic()
        assert reader.next().name == "ping"
        assert 0.7 < time.monotonic() - started < 2.5


def test_stream_delivers_matching_ideas_in_order_with_ids(sim):
    with open_stream(sim, code=ETF_BUY) as response:
        reader = SseReader(response)
        assert reader.next().name == "ready"
        sim.emit_burst(300)
        expected = [e for e in ledger_ideas(sim)
                    if json.loads(e["json"])["ASSET_CLASS"] == "ETFS" and json.loads(e["json"])["SIDE"] == "Buy"]
        assert expected
        received = reader.ideas(len(expected))
        assert [e.data for e in received] == [x["json"] for x in expected]  # exactly the JSON text sent
        assert [int(e.id) for e in received] == [x["version"] for x in expected]
        # Nothing else: the next event is a ping, not a non-matching idea.
        assert reader.next().name == "ping"


def test_stream_re_emits_updated_ideas(start_sim):
    sim = start_sim(update_probability=0.5)
    with open_stream(sim) as response:
        reader = SseReader(response)
        reader.next()
        sim.emit_burst(40)
        ideas = [e.json() for e in reader.ideas(40)]
    seen: dict[str, list[str]] = {}
    for idea in ideas:
        seen.setdefault(idea["idea_id"], []).append(idea["LAST_UPDATE"])
    updated = [stamps for stamps in seen.values() if len(stamps) > 1]
    assert updated and all(len(set(s)) == len(s) and s == sorted(s) for s in updated)


def test_stream_no_backlog_replay(sim):
    sim.emit_burst(5)
    with open_stream(sim) as response:
        reader = SseReader(response)
        reader.next()
        version = sim.emit_burst(1)[0]
        assert int(reader.ideas(1)[0].id) == version.version == 6


def test_stream_errors_come_before_any_event(sim):
    for code, status in ((None, 401), ("wrong-code", 401), (EXPIRED, 403)):
        with open_stream(sim, code=code) as response:
            assert_error(response, status)
    for poll in ("0.5", "10.5", "abc", "nan"):
        with open_stream(sim, poll_seconds=poll) as response:
            assert_error(response, 422, r"poll_seconds must be .*")


def test_stream_auth_errors_as_event_when_switched(start_sim):
    sim = start_sim(stream_auth_errors="event")
    with open_stream(sim, code=EXPIRED) as response:
        assert response.status_code == 200
        events = SseReader(response).rest()
    assert [e.name for e in events] == ["error"] and events[0].json() == {"detail": "API profile expired"}


def test_poll_seconds_clamped_when_switched(start_sim):
    sim = start_sim(clamp_params=True)
    with open_stream(sim, poll_seconds=0.5) as response:
        assert SseReader(response).next().json()["poll_seconds"] == 1.0


def test_official_client_style_parsing_of_multiline_data(start_sim):
    sim = start_sim(multiline_data=True)
    with open_stream(sim) as response:
        lines = response.iter_lines(chunk_size=1, decode_unicode=True)  # as the docs' Python client reads
        sim.emit_burst(3)  # right after the 200: the stream must still get them
        events, name, data = [], "message", []
        deadline = time.monotonic() + 10
        for line in lines:
            assert time.monotonic() < deadline
            line = line.strip()
            if not line:
                if data:
                    events.append((name, json.loads("\n".join(data))))
                    if sum(n == "idea" for n, _ in events) == 3:
                        break
                name, data = "message", []
            elif line.startswith(":"):
                continue
            elif line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data.append(line.split(":", 1)[1].strip())
    assert events[0][0] == "ready"
    ideas = [payload for n, payload in events if n == "idea"]
    assert ideas == [json.loads(e["json"]) for e in ledger_ideas(sim)]


def test_plain_sse_has_no_extras(start_sim):
    sim = start_sim(plain_sse=True)
    with open_stream(sim) as response:
        reader = SseReader(response)
        reader.next()
        sim.emit_burst(2)
        reader.ideas(2)
        for _ in range(3):
            reader.next_named("ping")
    assert not [line for line in reader.raw if line.startswith(("retry:", "id:", ":"))]


def test_raw_socket_reader_over_http_1_0(sim):
    sock = raw_stream(sim)
    try:
        data = read_until(sock, b"event: ping")
    finally:
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Transfer-Encoding" not in head
    assert body.startswith(b"retry: 3000\n\nevent: ready\ndata: {")


def test_close_delimited_framing_when_switched(start_sim):
    sim = start_sim(sse_framing="close")
    sock = raw_stream(sim, http_version="HTTP/1.1")
    try:
        head, _, body = read_until(sock, b"event: ready").partition(b"\r\n\r\n")
    finally:
        sock.close()
    assert b"Transfer-Encoding" not in head and b"Connection: close" in head
    assert body.startswith(b"retry: 3000\n\nevent: ready")


def test_deliver_every_poll_still_delivers(start_sim):
    sim = start_sim(deliver_every_poll=True)
    with open_stream(sim, poll_seconds=1) as response:
        reader = SseReader(response)
        reader.next()
        sim.emit_burst(4)
        assert len(reader.ideas(4)) == 4


# -- faults ------------------------------------------------------------------


def test_end_stream_after_n_events(start_sim):
    sim = start_sim(end_stream_after=3)
    with open_stream(sim) as response:
        events = SseReader(response).rest()  # ends cleanly, no exception
    assert [e.name for e in events] == ["ready", "ping", "ping"]


def test_error_event_after_n_events_then_close(start_sim):
    sim = start_sim(error_event_after=2)
    with open_stream(sim) as response:
        events = SseReader(response).rest()
    assert [e.name for e in events] == ["ready", "ping", "error"]
    assert list(events[-1].json()) == ["detail"]


def test_stall_after_keeps_the_socket_open_and_silent(start_sim):
    sim = start_sim(stall_after=0.4, ping_seconds=0.1)
    sock = raw_stream(sim)
    try:
        assert b"event: ready" in read_until(sock, b"event: ready")
        time.sleep(0.6)
        sim.emit_burst(3)
        drain(sock)  # whatever was sent before the stall
        sock.settimeout(0.8)
        with pytest.raises(socket.timeout):
            sock.recv(1)  # silent, but not closed (that would return b"")
        assert sim.stream_count() == 1
    finally:
        sock.close()
    assert wait_until(lambda: sim.stream_count() == 0)  # a stalled stream notices the client leaving


def test_stall_and_resume_at_run_time(sim):
    sock = raw_stream(sim)
    try:
        read_until(sock, b"event: ping")
        sim.stall(True)
        drain(sock, quiet=0.3)
        sock.settimeout(0.6)
        with pytest.raises(socket.timeout):
            sock.recv(1)
        sim.emit_burst(1)
        sim.stall(False)
        sock.settimeout(5)
        assert b"event: idea" in read_until(sock, b"event: idea")
    finally:
        sock.close()


def test_malformed_events_alternate_and_are_ledgered_apart(start_sim):
    sim = start_sim(malformed_every=3)
    with open_stream(sim) as response:
        reader = SseReader(response)
        reader.next()
        sim.emit_burst(6)
        events = reader.ideas(8)
    broken_first, broken_second = events[2], events[5]
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken_first.data)
    not_an_idea = json.loads(broken_second.data)
    assert isinstance(not_an_idea, dict) and "idea_id" not in not_an_idea and "ID" not in not_an_idea
    real = [e for i, e in enumerate(events) if i not in (2, 5)]
    assert [e.data for e in real] == [x["json"] for x in ledger_ideas(sim)]  # no idea lost to a broken one
    malformed = [e for e in sim.ledger_entries() if e["kind"] == "malformed"]
    assert [m["data"] for m in malformed] == [broken_first.data, broken_second.data]
    assert len(ledger_ideas(sim)) == 6


def test_duplicate_deliveries(start_sim):
    sim = start_sim(duplicate_every=2)
    with open_stream(sim) as response:
        reader = SseReader(response)
        reader.next()
        sim.emit_burst(4)
        ids = [int(e.id) for e in reader.ideas(6)]
    assert ids == [1, 2, 2, 3, 4, 4]


def test_drop_streams_cuts_the_connection(sim):
    with open_stream(sim) as response:
        reader = SseReader(response)
        reader.next()
        assert sim.wait_for_streams(1)
        assert sim.drop_streams() == 1
        with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
            reader.rest()


def test_profile_expiring_during_a_stream_gets_an_error_event(start_sim):
    until = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1.5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    soon = Profile(api_code="code-soon-0005", account_name="SOON", validity_type="date", valid_until=until)
    sim = start_sim(profiles=[soon])
    with open_stream(sim, code="code-soon-0005") as response:
        events = SseReader(response).rest()
    assert events[0].name == "ready" and events[-1].name == "error"
    assert events[-1].json() == {"detail": "API profile expired"}


def test_stop_sends_an_error_event_and_closes(sim):
    with open_stream(sim) as response:
        reader = SseReader(response)
        reader.next()
        sim.wait_for_streams(1)
        threading.Thread(target=sim.stop).start()
        events = reader.rest()
    assert events[-1].name == "error" and events[-1].json() == {"detail": "server shutting down"}


# -- generation, ledger, logs ------------------------------------------------


def test_rate_driven_generation(start_sim):
    sim = start_sim(rate=40)
    assert wait_until(lambda: len(ledger_ideas(sim)) >= 10)
    sim.pause_generation()
    time.sleep(0.1)
    paused_at = len(ledger_ideas(sim))
    time.sleep(0.3)
    assert len(ledger_ideas(sim)) == paused_at
    sim.resume_generation()
    sim.set_rate(200)
    assert wait_until(lambda: len(ledger_ideas(sim)) >= paused_at + 20)
    versions = [e["version"] for e in ledger_ideas(sim)]
    assert versions == list(range(1, len(versions) + 1))


def test_ledger_file_one_line_per_version_whatever_the_streams(start_sim, tmp_path):
    path = tmp_path / "hti.ledger.jsonl"
    sim = start_sim(ledger_path=path, ledger_in_memory=False)
    with open_stream(sim) as first, open_stream(sim) as second:
        readers = [SseReader(first), SseReader(second)]
        for reader in readers:
            reader.next()
        before = time.time()
        sim.emit_burst(10)
        delivered = [[e.data for e in reader.ideas(10)] for reader in readers]
        lines = [json.loads(line) for line in path.read_text().splitlines()]  # flushed while running
    assert [e["kind"] for e in lines] == ["idea"] * 10
    assert [e["version"] for e in lines] == list(range(1, 11))
    for entry in lines:
        assert set(entry) == {"kind", "version", "idea_id", "LAST_UPDATE", "update", "emitted_at", "json"}
        idea = json.loads(entry["json"])
        assert (idea["idea_id"], idea["LAST_UPDATE"]) == (entry["idea_id"], entry["LAST_UPDATE"])
        assert before <= entry["emitted_at"] <= time.time()
    assert delivered[0] == delivered[1] == [e["json"] for e in lines]
    assert sim.ledger_entries() == lines


def test_api_code_never_logged(sim, caplog):
    caplog.set_level(logging.DEBUG, logger="tradebus.sim.hti")
    get(sim, AUTH)
    get(sim, HISTORY, code="an-unknown-code-1234")
    with open_stream(sim) as response:
        SseReader(response).next()
    assert STREAM in caplog.text and "api_code=***" in caplog.text  # the access log is there, masked
    assert ALL not in caplog.text
