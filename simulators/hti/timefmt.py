"""The two time formats of the HTI API.

Envelope times (``authenticated_at``, ``served_at``, ``ts``) are ISO 8601 UTC
with ``Z``. Idea times are ``YYYY-MM-DD HH:MM:SS EST``: by default US Eastern
wall time (DST-aware, America/New_York) carrying the literal label ``EST``,
which is what the docs' examples imply (spec O1); ``fixed_est`` switches to
a fixed UTC-5.
"""

from __future__ import annotations

import datetime as dt

UTC = dt.timezone.utc
FIXED_EST = dt.timezone(dt.timedelta(hours=-5), "EST")
IDEA_TIME_FORMAT = "%Y-%m-%d %H:%M:%S EST"


def _eastern_zone() -> dt.tzinfo | None:
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo("America/New_York")
    except Exception:  # slim images have no tz database: fall back to the US rule
        return None


_EASTERN = _eastern_zone()


def _nth_sunday(year: int, month: int, n: int) -> int:
    first = dt.date(year, month, 1)
    first_sunday = 1 + (6 - first.weekday()) % 7
    return first_sunday + 7 * (n - 1)


def _us_eastern_offset(utc: dt.datetime) -> dt.timedelta:
    """Offset by the US rule since 2007 (2nd Sunday March to 1st Sunday November, at 02:00 local)."""
    start = dt.datetime(utc.year, 3, _nth_sunday(utc.year, 3, 2), 7, tzinfo=UTC)
    end = dt.datetime(utc.year, 11, _nth_sunday(utc.year, 11, 1), 6, tzinfo=UTC)
    return dt.timedelta(hours=-4 if start <= utc < end else -5)


def idea_wall_time(epoch: float, fixed_est: bool = False) -> dt.datetime:
    """Naive wall-clock time shown in idea fields for an instant."""
    utc = dt.datetime.fromtimestamp(int(epoch), UTC)
    if fixed_est:
        return utc.astimezone(FIXED_EST).replace(tzinfo=None)
    if _EASTERN is not None:
        return utc.astimezone(_EASTERN).replace(tzinfo=None)
    return (utc + _us_eastern_offset(utc)).replace(tzinfo=None)


def format_idea_time(wall: dt.datetime) -> str:
    return wall.strftime(IDEA_TIME_FORMAT)


def iso_utc(epoch: float) -> str:
    """Whole-second ISO 8601 UTC, as in the docs' envelope examples."""
    return dt.datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
