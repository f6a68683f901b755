"""Field-level conversions from contract C protobuf values to Avro values.

Decimal strings pass through byte for byte; they are only checked, never
re-formatted ("123.4500" stays "123.4500"). Timestamps become aware UTC
datetimes (Avro timestamp-micros: sub-microsecond nanos are truncated).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# ASCII digits only (Python's \d also matches other scripts' digits); no NaN or
# Infinity, no blanks: what a NUMERIC column and Decimal() both take exactly.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


class ConversionError(ValueError):
    """The event cannot become a record; ``reason`` is a short, stable code."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def decimal(message, field: str) -> str:
    """A mandatory decimal string, unchanged."""
    value = getattr(message, field)
    if _DECIMAL.fullmatch(value) is None:
        raise ConversionError("invalid_decimal", f"{type(message).__name__}.{field}: not a decimal string: {value[:40]!r}")
    return value


def optional_decimal(message, field: str) -> str | None:
    """An `optional` decimal string: absent means unknown (None), never zero."""
    if not message.HasField(field):
        return None
    return decimal(message, field)


def optional_text(message, field: str) -> str | None:
    return getattr(message, field) if message.HasField(field) else None


def timestamp(message, field: str) -> datetime:
    """A mandatory Timestamp; an unset one would read as 1970 and is refused."""
    if not message.HasField(field):
        raise ConversionError("missing_field", f"{type(message).__name__}.{field} is missing")
    return to_datetime(getattr(message, field))


def optional_timestamp(message, field: str) -> datetime | None:
    return to_datetime(getattr(message, field)) if message.HasField(field) else None


def to_datetime(ts) -> datetime:
    return EPOCH + timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)


def enum_name(enum_type, number: int) -> str:
    """The value's name; a number this contract does not know (a newer
    server) keeps the data flowing as UNRECOGNIZED_<n> instead of dropping it."""
    try:
        return enum_type.Name(number)
    except ValueError:
        return f"UNRECOGNIZED_{number}"


def identity(message, *fields: str) -> None:
    """Key fields must be present: a record without its key cannot be placed."""
    for field in fields:
        if not getattr(message, field):
            raise ConversionError("missing_field", f"{type(message).__name__}.{field} is empty")
