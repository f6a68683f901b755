"""Incremental parser for the WHATWG ``text/event-stream`` format.

Bytes are fed as they arrive, split anywhere (inside a UTF-8 sequence,
between the CR and LF of a CRLF, inside a field name); the events that come
out are the same whatever the split. Rules implemented (HTML Living Standard,
"Server-sent events", interpreting an event stream):

- UTF-8 decoding with replacement of invalid bytes; one leading BOM is dropped.
- Lines end with CRLF, LF or CR. A CR that ends one chunk is treated as a
  complete line end at once (no waiting), and an LF opening the next chunk is
  then swallowed as the second half of that CRLF.
- ``:`` starts a comment (ignored; counted so callers can see keep-alives).
- ``field: value`` (one optional space after the colon is removed); a line
  with no colon is a field with an empty value.
- ``event`` sets the type, ``data`` appends a line, ``id`` sets the last event
  id (ignored when it contains NUL), ``retry`` sets the reconnection time when
  it is all ASCII digits; other fields are ignored.
- A blank line dispatches: nothing when no data was collected; otherwise the
  data lines joined by LF, the type (``message`` by default) and the last
  event id. Type and data are then reset; the last event id persists.
- At end of stream an unterminated event is discarded.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

DEFAULT_EVENT = "message"


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: str
    id: str  # the last event id in force when this event was dispatched ("" if none)


class SseParser:
    """Feed bytes, get whole events back. Not thread-safe (one per stream)."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""  # decoded text not yet ending in a line terminator
        self._at_start = True  # a BOM may still come
        self._skip_lf = False  # the previous chunk ended in CR: an LF first is part of that CRLF
        self._event_type = ""
        self._data: list[str] = []
        self.last_event_id = ""
        self.retry_ms: int | None = None
        self.comments = 0

    def feed(self, chunk: bytes) -> list[SseEvent]:
        text = self._decoder.decode(chunk)
        if self._at_start:
            if not text:
                return []
            if text[0] == "\ufeff":
                text = text[1:]
            self._at_start = False
        if self._skip_lf and text:
            if text[0] == "\n":
                text = text[1:]
            self._skip_lf = False
        if not text:
            return []
        text = self._buffer + text
        events: list[SseEvent] = []
        start = 0
        length = len(text)
        while True:
            # The nearest line terminator of either kind.
            lf = text.find("\n", start)
            cr = text.find("\r", start, lf if lf >= 0 else length)
            if cr >= 0:
                end, next_start = cr, cr + 1
                if next_start < length:
                    if text[next_start] == "\n":
                        next_start += 1
                else:
                    self._skip_lf = True  # CR at the very end: the LF may be in the next chunk
            elif lf >= 0:
                end, next_start = lf, lf + 1
            else:
                break
            event = self._line(text[start:end])
            if event is not None:
                events.append(event)
            start = next_start
        self._buffer = text[start:]
        return events

    def _line(self, line: str) -> SseEvent | None:
        if not line:
            return self._dispatch()
        if line[0] == ":":
            self.comments += 1
            return None
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event_type = value
        elif name == "id":
            if "\x00" not in value:
                self.last_event_id = value
        elif name == "retry":
            if value and value.isascii() and value.isdigit():
                self.retry_ms = int(value)
        return None

    def _dispatch(self) -> SseEvent | None:
        if not self._data:
            self._event_type = ""
            return None
        event = SseEvent(self._event_type or DEFAULT_EVENT, "\n".join(self._data), self.last_event_id)
        self._event_type = ""
        self._data = []
        return event

    def pending(self) -> bool:
        """True while a partial line or an undispatched event is held (discarded at end of stream)."""
        return bool(self._buffer or self._data or self._event_type)
