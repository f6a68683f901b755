import datetime as dt
import json

import pytest

from simulators.hti.profiles import (
    FILTER_FIELDS, Profile, ProfileError, ProfileRegistry, load_profiles, profile_from_mapping, unlimited_profile,
)

IDEA = {"ASSET_CLASS": "ETFS", "TIMEFRAME": "M15", "INSTRUMENT": "GLD", "PREFIX": "HTI12", "SIDE": "Sell"}
CODE = "140b17o794rA680-1Ba16t168C566"


def profile(**filters) -> Profile:
    return Profile(api_code=CODE, account_name="NEW ACCOUNT 03", filters=filters)


def test_empty_filters_allow_everything():
    assert profile().matches(IDEA)
    assert profile(asset_classes=[], sides=[]).matches(IDEA)


@pytest.mark.parametrize(("filters", "expected"), [
    ({"asset_classes": ["ETFS"]}, True),
    ({"asset_classes": ["FOREX", "ETFS"]}, True),
    ({"asset_classes": ["FOREX"]}, False),
    ({"timeframes": ["M15", "H1"]}, True),
    ({"timeframes": ["M5"]}, False),
    ({"instruments": ["GL"]}, False),  # exact, not prefix
    ({"instruments": ["gld"]}, False),  # case-sensitive
    ({"sides": ["SELL"]}, False),
    ({"sides": ["Sell"]}, True),
    ({"prefixes": ["HTI12"], "sides": ["Sell"], "instruments": ["GLD"]}, True),
    ({"prefixes": ["HTI12"], "sides": ["Buy"]}, False),  # AND across categories
])
def test_filters(filters, expected):
    assert profile(**filters).matches(IDEA) is expected


def test_payload_has_the_documented_shape():
    payload = profile(timeframes=["M15"]).to_payload("2026-04-22T13:24:00Z")
    assert list(payload) == ["account_name", "api_code", "validity_type", "valid_until",
                             "request_limit_per_minute", "filters", "authenticated_at"]
    assert payload["api_code"] == CODE and payload["valid_until"] is None and payload["validity_type"] == "unlimited"
    assert payload["filters"] == {"asset_classes": [], "timeframes": ["M15"], "instruments": [], "prefixes": [], "sides": []}
    assert list(payload["filters"]) == list(FILTER_FIELDS)


def test_date_validity_is_inclusive_in_utc():
    p = Profile(api_code=CODE, account_name="A", validity_type="date", valid_until="2026-04-22")
    utc = dt.timezone.utc
    assert not p.is_expired(dt.datetime(2026, 4, 22, 23, 59, 59, tzinfo=utc))
    assert p.is_expired(dt.datetime(2026, 4, 23, 0, 0, tzinfo=utc))
    assert p.to_payload("x")["valid_until"] == "2026-04-22"


def test_timestamp_validity_and_unlimited():
    p = Profile(api_code=CODE, account_name="A", validity_type="date", valid_until="2026-04-22T12:00:00Z")
    utc = dt.timezone.utc
    assert not p.is_expired(dt.datetime(2026, 4, 22, 11, 59, tzinfo=utc))
    assert p.is_expired(dt.datetime(2026, 4, 22, 12, 0, tzinfo=utc))
    assert not unlimited_profile(CODE, "A").is_expired(dt.datetime(2999, 1, 1, tzinfo=utc))


def test_code_is_kept_out_of_repr_and_errors():
    assert CODE not in repr(profile())
    with pytest.raises(ProfileError) as info:
        Profile(api_code=CODE, account_name="A", validity_type="date", valid_until="someday")
    assert CODE not in str(info.value)
    with pytest.raises(ProfileError) as info:
        ProfileRegistry([profile(), profile()])
    assert CODE not in str(info.value)


@pytest.mark.parametrize("entry", [
    {"api_code": "", "account_name": "A"},
    {"api_code": "abcd", "validity_type": "weekly"},
    {"api_code": "abcd", "validity_type": "date"},
    {"api_code": "abcd", "filters": {"colours": ["red"]}},
    {"api_code": "abcd", "filters": {"sides": "Buy"}},
    {"api_code": "abcd", "request_limit_per_minute": 0},
    {"api_code": "abcd", "surprise": 1},
])
def test_invalid_profiles_are_rejected(entry):
    with pytest.raises(ProfileError):
        profile_from_mapping(entry)


def test_load_yaml_with_an_unquoted_date(tmp_path):
    path = tmp_path / "profiles.yaml"
    path.write_text(
        "- api_code: code-one\n  account_name: ONE\n  valid_until: 2026-12-31\n"
        "  request_limit_per_minute: 5\n  filters: {asset_classes: [ETFS], sides: [Buy]}\n"
        "- api_code: code-two\n"
    )
    one, two = load_profiles(path)
    assert (one.validity_type, one.valid_until, one.request_limit_per_minute) == ("date", "2026-12-31", 5)
    assert one.filters["asset_classes"] == ("ETFS",) and one.filters["timeframes"] == ()
    assert (two.account_name, two.validity_type, two.request_limit_per_minute) == ("SIM ACCOUNT 02", "unlimited", 60)


def test_load_json_wrapped(tmp_path):
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps({"profiles": [{"api_code": "code-one", "account_name": "ONE"}]}))
    assert [p.account_name for p in load_profiles(path)] == ["ONE"]


def test_load_errors(tmp_path):
    with pytest.raises(ProfileError):
        load_profiles(tmp_path / "missing.yaml")
    (tmp_path / "empty.yaml").write_text("[]")
    with pytest.raises(ProfileError):
        load_profiles(tmp_path / "empty.yaml")


def test_registry_lookup_is_exact():
    registry = ProfileRegistry([profile()])
    assert registry.lookup(CODE).account_name == "NEW ACCOUNT 03"
    assert registry.lookup(CODE.lower()) is None
    assert registry.lookup("") is None and registry.lookup(None) is None
