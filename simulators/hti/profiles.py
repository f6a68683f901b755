"""API profiles: what an API code may see, for how long, and how often.

Assumptions where the docs are silent (spec §2.4, §2.5, O11, O12):
- filters match exactly and case-sensitively; an empty list allows all; the
  five categories combine with AND;
- ``valid_until`` of a ``date`` profile is an ISO date ``YYYY-MM-DD`` and the
  profile is valid through the end of that day in UTC; an ISO timestamp
  (``2026-12-31T18:00:00Z``) is also accepted and expires at that instant.

A profiles file (YAML or JSON) is a list of objects, or ``{"profiles": [...]}``::

    - api_code: abc123
      account_name: DEMO ETFS
      validity_type: date        # or unlimited (default)
      valid_until: "2026-12-31"
      request_limit_per_minute: 60
      filters: {asset_classes: [ETFS], sides: [Buy]}
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from tradebus.config import ConfigError
from tradebus.redaction import register_secret

# Profile filter key -> the idea field it restricts.
FILTER_FIELDS: dict[str, str] = {
    "asset_classes": "ASSET_CLASS",
    "timeframes": "TIMEFRAME",
    "instruments": "INSTRUMENT",
    "prefixes": "PREFIX",
    "sides": "SIDE",
}
VALIDITY_TYPES = ("unlimited", "date")


class ProfileError(ConfigError):
    """A profile definition is invalid; the message never contains the code."""


@dataclass(frozen=True, eq=False)
class Profile:
    api_code: str = field(repr=False)  # a secret: kept out of repr, logs and errors
    account_name: str
    validity_type: str = "unlimited"
    valid_until: str | None = None
    request_limit_per_minute: int = 60
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    expires_at: dt.datetime | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.api_code:
            raise ProfileError(f"profile {self.account_name!r}: api_code is empty")
        if self.validity_type not in VALIDITY_TYPES:
            raise ProfileError(f"profile {self.account_name!r}: validity_type must be one of {', '.join(VALIDITY_TYPES)}")
        if self.validity_type == "date":
            object.__setattr__(self, "expires_at", _expiry(self.account_name, self.valid_until))
        elif self.valid_until is not None:
            raise ProfileError(f"profile {self.account_name!r}: valid_until needs validity_type 'date'")
        if not isinstance(self.request_limit_per_minute, int) or self.request_limit_per_minute < 1:
            raise ProfileError(f"profile {self.account_name!r}: request_limit_per_minute must be a positive integer")
        object.__setattr__(self, "filters", _normalise_filters(self.account_name, self.filters))
        register_secret(self.api_code)

    def matches(self, idea: Mapping[str, Any]) -> bool:
        for key, allowed in self.filters.items():
            if allowed and idea.get(FILTER_FIELDS[key]) not in allowed:
                return False
        return True

    def is_expired(self, now: dt.datetime | None = None) -> bool:
        if self.expires_at is None:
            return False
        return (now or dt.datetime.now(dt.timezone.utc)) >= self.expires_at

    def to_payload(self, authenticated_at: str) -> dict:
        """The profile object of spec §2.3, key for key."""
        return {
            "account_name": self.account_name,
            "api_code": self.api_code,
            "validity_type": self.validity_type,
            "valid_until": self.valid_until,
            "request_limit_per_minute": self.request_limit_per_minute,
            "filters": {key: list(self.filters[key]) for key in FILTER_FIELDS},
            "authenticated_at": authenticated_at,
        }


def _expiry(account: str, valid_until: Any) -> dt.datetime:
    text = str(valid_until or "")
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ProfileError(f"profile {account!r}: valid_until must be YYYY-MM-DD or an ISO timestamp") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _normalise_filters(account: str, filters: Mapping[str, Iterable[str]] | None) -> dict[str, tuple[str, ...]]:
    filters = dict(filters or {})
    unknown = set(filters) - set(FILTER_FIELDS)
    if unknown:
        raise ProfileError(f"profile {account!r}: unknown filter(s) {', '.join(sorted(unknown))}")
    result = {}
    for key in FILTER_FIELDS:
        values = filters.get(key) or ()
        if isinstance(values, str) or not all(isinstance(v, str) for v in values):
            raise ProfileError(f"profile {account!r}: filters.{key} must be a list of strings")
        result[key] = tuple(values)
    return result


def unlimited_profile(api_code: str, account_name: str, request_limit_per_minute: int = 600) -> Profile:
    return Profile(api_code=api_code, account_name=account_name, request_limit_per_minute=request_limit_per_minute)


def profile_from_mapping(entry: Mapping[str, Any], index: int = 0) -> Profile:
    if not isinstance(entry, Mapping):
        raise ProfileError(f"profile #{index + 1}: expected a mapping")
    known = {"api_code", "account_name", "validity_type", "valid_until", "request_limit_per_minute", "filters"}
    unknown = set(entry) - known
    if unknown:
        raise ProfileError(f"profile #{index + 1}: unknown key(s) {', '.join(sorted(unknown))}")
    valid_until = entry.get("valid_until")
    if isinstance(valid_until, dt.datetime):  # YAML reads unquoted timestamps itself
        valid_until = valid_until.isoformat().replace("+00:00", "Z")
    elif isinstance(valid_until, dt.date):
        valid_until = valid_until.isoformat()
    code = entry.get("api_code")
    return Profile(
        api_code=str(code).strip() if code is not None else "",
        account_name=str(entry.get("account_name") or f"SIM ACCOUNT {index + 1:02d}"),
        validity_type=str(entry.get("validity_type") or ("date" if valid_until else "unlimited")),
        valid_until=valid_until,
        request_limit_per_minute=entry.get("request_limit_per_minute", 60),
        filters=entry.get("filters") or {},
    )


def load_profiles(path: str | Path) -> list[Profile]:
    try:
        data = yaml.safe_load(Path(path).read_text())  # YAML is a superset of JSON
    except OSError as exc:
        raise ProfileError(f"--profiles {path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError:
        raise ProfileError(f"--profiles {path}: not valid YAML or JSON") from None
    if isinstance(data, Mapping):
        data = data.get("profiles")
    if not isinstance(data, list) or not data:
        raise ProfileError(f"--profiles {path}: expected a non-empty list of profiles")
    return [profile_from_mapping(entry, i) for i, entry in enumerate(data)]


class ProfileRegistry:
    def __init__(self, profiles: Iterable[Profile]):
        self._by_code: dict[str, Profile] = {}
        for profile in profiles:
            if profile.api_code in self._by_code:
                raise ProfileError(f"profile {profile.account_name!r}: api_code used by another profile")
            self._by_code[profile.api_code] = profile

    def lookup(self, api_code: str | None) -> Profile | None:
        return self._by_code.get(api_code) if api_code else None

    def __len__(self) -> int:
        return len(self._by_code)

    def __iter__(self):
        return iter(self._by_code.values())
