"""The WHATWG event-stream parser: rules, and arbitrary splits (hypothesis)."""

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from producers.hti.sse import SseEvent, SseParser


def parse_all(data: bytes, chunks=None):
    parser = SseParser()
    events = []
    for chunk in chunks or [data]:
        events.extend(parser.feed(chunk))
    return events, parser


def test_named_events_multiline_data_and_default_type():
    events, _ = parse_all(b"event: idea\ndata: {\"a\":\ndata: 1}\n\ndata: plain\n\n")
    assert events == [SseEvent("idea", '{"a":\n1}', ""), SseEvent("message", "plain", "")]


def test_every_line_ending_kind():
    for sep in (b"\n", b"\r", b"\r\n"):
        stream = b"event: ping" + sep + b"data: x" + sep + sep + b"data: y" + sep + sep
        events, _ = parse_all(stream)
        assert events == [SseEvent("ping", "x", ""), SseEvent("message", "y", "")], sep


def test_mixed_line_endings_and_cr_lf_split_across_chunks():
    events, _ = parse_all(b"", [b"data: a\r", b"\ndata: b\r", b"\r", b"\n", b"data: c\n\n"])
    # "data: a" CRLF, "data: b" CR, a blank line (CR) that dispatches; the LF opening the next chunk
    # completes that CR as a CRLF, so it is not a second blank line.
    assert events == [SseEvent("message", "a\nb", ""), SseEvent("message", "c", "")]


def test_comments_ignored_and_counted():
    events, parser = parse_all(b": keep-alive\n\n:another\ndata: x\n\n")
    assert events == [SseEvent("message", "x", "")]
    assert parser.comments == 2


def test_bom_only_at_start():
    events, _ = parse_all(b"\xef\xbb\xbfdata: x\n\n\xef\xbb\xbfdata: y\n\n")
    # The second BOM is part of a field name ("\ufeffdata"), so that line is ignored.
    assert events == [SseEvent("message", "x", "")]


def test_bom_split_across_chunks():
    events, _ = parse_all(b"", [b"\xef", b"\xbb", b"\xbfdata: x\n\n"])
    assert events == [SseEvent("message", "x", "")]


def test_id_persists_and_nul_id_ignored():
    events, parser = parse_all(b"id: 7\ndata: a\n\ndata: b\n\nid: 8\x00\ndata: c\n\nid\ndata: d\n\n")
    assert [e.id for e in events] == ["7", "7", "7", ""]
    assert parser.last_event_id == ""


def test_retry_digits_only():
    _, parser = parse_all(b"retry: 3000\n\n")
    assert parser.retry_ms == 3000
    _, parser = parse_all(b"retry: 3000\nretry: 12a\nretry: \xc2\xb2\n\n")
    assert parser.retry_ms == 3000


def test_field_without_colon_and_space_handling():
    events, _ = parse_all(b"data\ndata:no-space\ndata:  two-spaces\n\n")
    assert events == [SseEvent("message", "\nno-space\n two-spaces", "")]


def test_event_without_data_is_not_dispatched_and_type_reset():
    events, _ = parse_all(b"event: idea\n\ndata: x\n\n")
    assert events == [SseEvent("message", "x", "")]


def test_unterminated_event_discarded_at_end():
    events, parser = parse_all(b"data: x\n\ndata: partial\n")
    assert events == [SseEvent("message", "x", "")]
    assert parser.pending()


def test_utf8_split_inside_a_character_and_invalid_bytes_replaced():
    text = "data: Stop-Loss über 448 €\n\n".encode()
    cut = text.index("€".encode()) + 1
    events, _ = parse_all(b"", [text[:cut], text[cut:]])
    assert events == [SseEvent("message", "Stop-Loss über 448 €", "")]
    events, _ = parse_all(b"data: \xff\n\n")
    assert events == [SseEvent("message", "\ufffd", "")]


def test_unknown_fields_ignored():
    events, _ = parse_all(b"foo: bar\ndata: x\n\n")
    assert events == [SseEvent("message", "x", "")]


# -- property: any split gives the same events ------------------------------

def reference_parse(data: bytes):
    """A plain whole-buffer reading of the same rules, to compare against."""
    text = data.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = re.split(r"\r\n|\r|\n", text)
    lines = lines[:-1]  # the part after the last terminator is not a line yet
    events, event_type, buf, last_id, retry = [], "", [], "", None
    for line in lines:
        if line == "":
            if buf:
                events.append(SseEvent(event_type or "message", "\n".join(buf), last_id))
            event_type, buf = "", []
            continue
        if line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            buf.append(value)
        elif name == "event":
            event_type = value
        elif name == "id" and "\x00" not in value:
            last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            retry = int(value)
    return events, last_id, retry


line_ends = st.sampled_from(["\n", "\r", "\r\n"])
values = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=12)
field_lines = st.one_of(
    st.tuples(st.sampled_from(["data", "event", "id", "retry", "x", ""]), st.sampled_from([": ", ":", ""]), values)
    .map(lambda t: f"{t[0]}{t[1]}{t[2]}" if t[0] or t[1] else ""),
    values.map(lambda v: ":" + v),
    st.integers(0, 99999).map(lambda n: f"retry: {n}"),
)
streams = st.tuples(st.booleans(), st.lists(st.tuples(field_lines, line_ends), max_size=25)).map(
    lambda t: ("\ufeff" if t[0] else "") + "".join(line + end for line, end in t[1])
)


@settings(max_examples=300, deadline=None)
@given(streams, st.data())
def test_arbitrary_splits_give_the_same_events(text, data):
    raw = text.encode("utf-8")
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=12)))
    chunks = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)])]
    whole_events, whole = parse_all(raw)
    split_events, split = parse_all(raw, chunks)
    assert split_events == whole_events
    assert (split.last_event_id, split.retry_ms) == (whole.last_event_id, whole.retry_ms)
    expected_events, expected_id, expected_retry = reference_parse(raw)
    # A trailing lone CR ends a line in both: the parser does not wait for a possible LF.
    assert whole_events == expected_events
    assert whole.last_event_id == expected_id and whole.retry_ms == expected_retry


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200), st.data())
def test_arbitrary_bytes_never_crash_and_split_invariant(raw, data):
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=8)))
    chunks = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)])]
    assert parse_all(raw)[0] == parse_all(raw, chunks)[0]


def test_byte_by_byte_feeding_of_a_realistic_stream():
    stream = (b"retry: 3000\n\nid: 1\r\nevent: ready\r\ndata: {\"poll_seconds\": 2}\r\n\r\n: keep-alive\r\r"
              b"event: idea\rdata: {\"DESCRIPTION\": \"two\\nlines\",\rdata:  \"x\": 1}\r\r")
    events, _ = parse_all(stream, [stream[i:i + 1] for i in range(len(stream))])
    assert [e.event for e in events] == ["ready", "idea"]
    assert events[1].data == '{"DESCRIPTION": "two\\nlines",\n "x": 1}'
