"""HTI idea JSON -> the typed ``tradebus.v1.HtiIdea`` record (a dict for fastavro).

Rules (spec §4):
- ``idea_id`` is the ``idea_id`` key, falling back to ``ID`` (O2); one of them
  must be a non-empty string.
- ``CONFIDENCE`` / ``ESTIMATED_PL`` are percentage strings: ``"90%"`` -> 0.9,
  ``"+1.15%"`` -> 0.0115 (decimal arithmetic, so the result is the double
  nearest to the exact fraction).
- Idea times ``YYYY-MM-DD HH:MM:SS EST`` are converted to UTC by the zone rule
  (``TRADEBUS_HTI_TIME_ZONE``): by default ``America/New_York`` (US Eastern
  wall time, DST-aware, despite the literal ``EST`` label — spec O1; in the
  repeated autumn hour the first occurrence (EDT) is taken, a time in the
  skipped spring hour is read with the pre-transition offset (UTC-5));
  ``fixed-utc-5`` reads it as a fixed UTC-5; any other IANA zone name is used
  as it is. ``LAST_UPDATE`` is also kept verbatim (it is part of the identity).
- Keys this schema does not know are kept in ``unknown_fields``, each value as
  compact JSON text.
- ``upstream_json`` is the idea's JSON text exactly as received: the SSE data
  for stream ideas, the exact slice of the response body for history ideas
  (see ``history_idea_texts``).

Everything that cannot be converted raises ``ConversionError`` carrying a
short, bounded reason code (used as a metric label and in the dead letter).
"""

from __future__ import annotations

import functools
import json
import re
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation

UTC = timezone.utc
ZONE_RULE_FIXED = "fixed-utc-5"
DEFAULT_ZONE_RULE = "America/New_York"

STRING_FIELDS = {
    "ID": "id", "document_id": "document_id", "PREFIX": "prefix", "ASSET_CLASS": "asset_class",
    "INSTRUMENT": "instrument", "TIMEFRAME": "timeframe", "SIDE": "side", "OPEN_ORDER_TYPE": "open_order_type",
    "DESCRIPTION": "description",
}
NUMBER_FIELDS = {"PRICE": "price", "TAKE_PROFIT": "take_profit", "STOP_LOSS": "stop_loss"}
PERCENT_FIELDS = {"CONFIDENCE": "confidence", "ESTIMATED_PL": "estimated_pl"}
OPTIONAL_TIME_FIELDS = {"CREATION_TIME": "creation_time", "EXPIRATION_TIME": "expiration_time"}
KNOWN_KEYS = frozenset({*STRING_FIELDS, *NUMBER_FIELDS, *PERCENT_FIELDS, *OPTIONAL_TIME_FIELDS, "LAST_UPDATE", "idea_id"})

_TIME = re.compile(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) EST")
_PERCENT = re.compile(r"([+-]?\d+(?:\.\d+)?)%")
_JSON_WS = " \t\n\r"
_decoder = json.JSONDecoder(parse_constant=lambda name: _reject_constant(name))


class ConversionError(ValueError):
    """The upstream text cannot become a record; ``reason`` is a short code."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _reject_constant(name: str):
    # NaN / Infinity are not JSON; Python would accept them silently.
    raise ValueError(f"{name} is not valid JSON")


def zone_for(rule: str) -> tzinfo:
    """The tzinfo for a TRADEBUS_HTI_TIME_ZONE value; KeyError-free: raises ValueError."""
    if rule == ZONE_RULE_FIXED:
        return timezone(timedelta(hours=-5), "UTC-5")
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(rule)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {rule!r} (expected {DEFAULT_ZONE_RULE}, {ZONE_RULE_FIXED} or an IANA zone name)") from None


def parse_json_object(text: str) -> dict:
    try:
        value = _decoder.decode(text)
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise ConversionError("invalid_json", f"invalid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ConversionError("not_an_object", f"expected a JSON object, got {type(value).__name__}")
    return value


def parse_percent(value: object, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        fraction = _percent_fraction(value)
        if fraction is not None:
            return fraction
    raise ConversionError("bad_percent", f"{field}: expected a percentage like '90%' or '+1.15%', got {_short(value)}")


@functools.lru_cache(maxsize=4096)  # a few hundred distinct strings in practice; parsing them is the slow part
def _percent_fraction(text: str) -> float | None:
    match = _PERCENT.fullmatch(text.strip())
    if match:
        try:
            return float(Decimal(match.group(1)) / 100)
        except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
            pass
    return None


def parse_idea_time(value: object, field: str, zone: tzinfo) -> datetime:
    if isinstance(value, str):
        instant = _idea_time_utc(value, zone)
        if instant is not None:
            return instant
    raise ConversionError("bad_time", f"{field}: expected 'YYYY-MM-DD HH:MM:SS EST', got {_short(value)}")


@functools.lru_cache(maxsize=8192)  # whole seconds: ideas and their three time fields share many values
def _idea_time_utc(text: str, zone: tzinfo) -> datetime | None:
    match = _TIME.fullmatch(text)
    if match:
        try:
            wall = datetime.fromisoformat(match.group(1))
        except ValueError:
            return None  # e.g. month 13
        return wall.replace(tzinfo=zone).astimezone(UTC)
    return None


def idea_key(idea: dict) -> str:
    for key in ("idea_id", "ID"):
        value = idea.get(key)
        if isinstance(value, str) and value:
            return value
    raise ConversionError("missing_idea_id", "idea has neither idea_id nor ID (non-empty string)")


def idea_record(idea: dict, upstream_json: str, zone: tzinfo, metadata: dict) -> dict:
    """Convert one parsed idea object; raises ConversionError."""
    idea_id = idea_key(idea)
    last_update_text = idea.get("LAST_UPDATE")
    if last_update_text is None:
        raise ConversionError("missing_last_update", "idea has no LAST_UPDATE")
    if not isinstance(last_update_text, str):
        raise ConversionError("bad_time", f"LAST_UPDATE: expected a string, got {_short(last_update_text)}")
    record: dict = {
        "metadata": metadata,
        "idea_id": idea_id,
        "last_update": parse_idea_time(last_update_text, "LAST_UPDATE", zone),
        "last_update_text": last_update_text,
        "upstream_json": upstream_json,
    }
    for key, name in STRING_FIELDS.items():
        value = idea.get(key)
        if value is not None and not isinstance(value, str):
            raise ConversionError("bad_field_type", f"{key}: expected a string, got {_short(value)}")
        record[name] = value
    for key, name in NUMBER_FIELDS.items():
        value = idea.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ConversionError("bad_field_type", f"{key}: expected a number, got {_short(value)}")
        record[name] = None if value is None else float(value)
    for key, name in PERCENT_FIELDS.items():
        record[name] = parse_percent(idea.get(key), key)
    for key, name in OPTIONAL_TIME_FIELDS.items():
        value = idea.get(key)
        record[name] = None if value is None else parse_idea_time(value, key, zone)
    record["unknown_fields"] = {
        key: json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        for key, value in idea.items() if key not in KNOWN_KEYS
    }
    return record


def history_idea_texts(body: str) -> tuple[dict, list[tuple[object, str]]]:
    """Parse a /history body; return (the envelope, [(idea value, its exact JSON text)]).

    The ideas are sliced out of the body as sent, so ``upstream_json`` of a
    history idea is byte-for-byte the provider's text (key order, spacing,
    escapes), like the SSE data of a stream idea. Raises ConversionError when
    the body is not a JSON object with an ``ideas`` array.
    """
    envelope = parse_json_object(body)  # validates the whole document first
    ideas = envelope.get("ideas")
    if not isinstance(ideas, list):
        raise ConversionError("bad_history", "history response has no 'ideas' array")
    spans = _ideas_array_spans(body)
    if spans is None or len(spans) != len(ideas):  # pragma: no cover - only if the scanner and json disagree
        return envelope, [(idea, json.dumps(idea, ensure_ascii=False, separators=(",", ":"))) for idea in ideas]
    return envelope, [(idea, body[start:end]) for idea, (start, end) in zip(ideas, spans)]


def _ideas_array_spans(body: str) -> list[tuple[int, int]] | None:
    """(start, end) of every element of the top-level ``ideas`` array (the last one, as json.loads keeps)."""
    pos = _skip_ws(body, 0)
    if body[pos:pos + 1] != "{":
        return None
    pos = _skip_ws(body, pos + 1)
    found: list[tuple[int, int]] | None = None
    if body[pos:pos + 1] == "}":
        return None
    while True:
        key, pos = _decoder.raw_decode(body, pos)
        pos = _skip_ws(body, pos)
        pos = _skip_ws(body, pos + 1)  # the ':'
        if key == "ideas" and body[pos:pos + 1] == "[":
            spans: list[tuple[int, int]] = []
            pos = _skip_ws(body, pos + 1)
            if body[pos:pos + 1] == "]":
                pos += 1
            else:
                while True:
                    _, end = _decoder.raw_decode(body, pos)
                    spans.append((pos, end))
                    pos = _skip_ws(body, end)
                    if body[pos] == "]":
                        pos += 1
                        break
                    pos = _skip_ws(body, pos + 1)  # the ','
            found = spans
        else:
            _, pos = _decoder.raw_decode(body, pos)
        pos = _skip_ws(body, pos)
        if body[pos:pos + 1] == "}":
            return found
        pos = _skip_ws(body, pos + 1)  # the ','


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _JSON_WS:
        pos += 1
    return pos


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
