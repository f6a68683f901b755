import datetime as dt
import json
import re
from collections import defaultdict

import pytest
from hypothesis import given, settings, strategies as st

from simulators.hti import timefmt
from simulators.hti.catalog import INSTRUMENTS, TIMEFRAMES
from simulators.hti.ideas import EXTRA_FIELD, IdeaGenerator

IDEA_KEYS = {"ID", "idea_id", "document_id", "PREFIX", "ASSET_CLASS", "INSTRUMENT", "TIMEFRAME", "SIDE",
             "OPEN_ORDER_TYPE", "PRICE", "TAKE_PROFIT", "STOP_LOSS", "CONFIDENCE", "ESTIMATED_PL", "DESCRIPTION",
             "CREATION_TIME", "LAST_UPDATE", "EXPIRATION_TIME"}
ID_PATTERN = re.compile(r"^(HTI11|HTI12)_TB_([A-Z]+)_(M5|M15|H1)_(\d{8})_(\d{6})$")
TIME_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} EST$")
CONFIDENCE_PATTERN = re.compile(r"^\d{2}%$")
PL_PATTERN = re.compile(r"^[+-]\d+\.\d{2}%$")
ASSET_CLASS = {i.symbol: i.asset_class for i in INSTRUMENTS}
SUMMER = dt.datetime(2026, 4, 22, 13, 24, tzinfo=dt.timezone.utc).timestamp()  # the docs' history example


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S EST")


class StepClock:
    def __init__(self, start: float, step: float = 0.0):
        self.now, self.step = start, step

    def __call__(self) -> float:
        value = self.now
        self.now += self.step
        return value


def generate(count=400, seed=7, clock=None, **kwargs):
    gen = IdeaGenerator(seed, clock=clock or StepClock(SUMMER, 0.5), **kwargs)
    return [gen.next() for _ in range(count)]


def test_fields_and_formats():
    for version in generate():
        idea = version.idea
        assert set(idea) == IDEA_KEYS
        assert idea["ID"] == idea["idea_id"] == idea["document_id"]
        prefix, symbol, timeframe, day, hms = ID_PATTERN.match(idea["ID"]).groups()
        assert (prefix, symbol, timeframe) == (idea["PREFIX"], idea["INSTRUMENT"], idea["TIMEFRAME"])
        assert idea["ASSET_CLASS"] == ASSET_CLASS[symbol]
        assert idea["SIDE"] in ("Buy", "Sell")
        assert idea["OPEN_ORDER_TYPE"] == {"Buy": "BUY LIMIT", "Sell": "SELL LIMIT"}[idea["SIDE"]]
        assert CONFIDENCE_PATTERN.match(idea["CONFIDENCE"])
        assert PL_PATTERN.match(idea["ESTIMATED_PL"]) and idea["ESTIMATED_PL"][1:] != "0.00%"
        for key in ("PRICE", "TAKE_PROFIT", "STOP_LOSS"):
            assert isinstance(idea[key], float)
        for key in ("CREATION_TIME", "LAST_UPDATE", "EXPIRATION_TIME"):
            assert TIME_PATTERN.match(idea[key]), idea[key]
        created, updated = parse_time(idea["CREATION_TIME"]), parse_time(idea["LAST_UPDATE"])
        assert created <= updated < parse_time(idea["EXPIRATION_TIME"])
        bar = dt.datetime.strptime(day + hms, "%Y%m%d%H%M%S")
        assert bar < created
        assert (bar.hour * 3600 + bar.minute * 60 + bar.second) % TIMEFRAMES[timeframe] == 0
        assert json.loads(version.text) == idea


def test_take_profit_and_stop_loss_on_the_right_side():
    versions = generate(600)
    sides = {v.idea["SIDE"] for v in versions}
    assert sides == {"Buy", "Sell"}
    for v in versions:
        i = v.idea
        if i["SIDE"] == "Buy":
            assert i["TAKE_PROFIT"] > i["PRICE"] > i["STOP_LOSS"] > 0
        else:
            assert i["TAKE_PROFIT"] < i["PRICE"] < i["STOP_LOSS"]


def test_variety_of_values():
    ideas = [v.idea for v in generate(600)]
    assert {i["ASSET_CLASS"] for i in ideas} == {"US EQUITIES", "ETFS", "FOREX"}
    assert {i["TIMEFRAME"] for i in ideas} == {"M5", "M15", "H1"}
    assert {i["PREFIX"] for i in ideas} == {"HTI11", "HTI12"}
    assert any("\n" in i["DESCRIPTION"] for i in ideas)
    assert any(i["ESTIMATED_PL"].startswith("-") for i in ideas)
    assert any(i["ESTIMATED_PL"].startswith("+") for i in ideas)


def test_same_seed_same_ideas_other_seed_others():
    first = [v.text for v in generate(200, seed=42)]
    assert first == [v.text for v in generate(200, seed=42)]
    assert first != [v.text for v in generate(200, seed=43)]


def test_versions_are_numbered_from_one():
    assert [v.version for v in generate(5)] == [1, 2, 3, 4, 5]


def test_updates_are_strictly_later_even_with_a_frozen_clock():
    # A clock that never moves forces the one-second step between versions.
    versions = generate(800, clock=StepClock(SUMMER, 0.0), update_probability=0.5)
    by_id = defaultdict(list)
    for v in versions:
        by_id[v.idea_id].append(v)
    updated = [vs for vs in by_id.values() if len(vs) > 1]
    assert updated and any(len(vs) > 3 for vs in updated)
    for vs in updated:
        assert not vs[0].is_update and all(v.is_update for v in vs[1:])
        stamps = [parse_time(v.idea["LAST_UPDATE"]) for v in vs]
        assert all(later - earlier >= dt.timedelta(seconds=1) for earlier, later in zip(stamps, stamps[1:]))
        for key in ("CREATION_TIME", "SIDE", "INSTRUMENT", "TIMEFRAME", "PREFIX", "ASSET_CLASS", "ID"):
            assert len({v.idea[key] for v in vs}) == 1
        for v in vs:
            assert parse_time(v.idea["EXPIRATION_TIME"]) > parse_time(v.idea["LAST_UPDATE"])


def test_new_ideas_never_reuse_an_id():
    versions = generate(3000, clock=StepClock(SUMMER, 0.0), update_probability=0.0)
    ids = [v.idea_id for v in versions]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(("instant", "fixed", "expected"), [
    ("2026-04-22T13:24:00", False, "2026-04-22 09:24:00 EST"),  # daylight time: UTC-4, label EST
    ("2026-04-22T13:24:00", True, "2026-04-22 08:24:00 EST"),
    ("2026-01-15T13:24:00", False, "2026-01-15 08:24:00 EST"),
    ("2026-01-15T13:24:00", True, "2026-01-15 08:24:00 EST"),
])
def test_idea_time_zone(instant, fixed, expected):
    epoch = dt.datetime.fromisoformat(instant).replace(tzinfo=dt.timezone.utc).timestamp()
    gen = IdeaGenerator(1, clock=lambda: epoch, fixed_est=fixed)
    assert gen.next().idea["LAST_UPDATE"] == expected


def test_update_across_the_dst_fall_back_stays_strictly_later():
    first_pass = dt.datetime(2026, 11, 1, 5, 50, tzinfo=dt.timezone.utc).timestamp()  # 01:50 EDT
    second_pass = dt.datetime(2026, 11, 1, 6, 10, tzinfo=dt.timezone.utc).timestamp()  # 01:10 EST
    clock = StepClock(first_pass)
    gen = IdeaGenerator(3, clock=clock, update_probability=0.0)
    original = gen.next()
    gen.update_probability = 0.999999
    clock.now = second_pass
    update = gen.next()
    assert update.idea_id == original.idea_id
    assert parse_time(update.idea["LAST_UPDATE"]) > parse_time(original.idea["LAST_UPDATE"])


def test_us_rule_fallback_matches_the_tz_database():
    zone = pytest.importorskip("zoneinfo").ZoneInfo("America/New_York")
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    for hours in range(0, 365 * 24, 7):
        instant = start + dt.timedelta(hours=hours)
        assert timefmt._us_eastern_offset(instant) == instant.astimezone(zone).utcoffset()


def test_extra_field_is_added_without_changing_the_rest():
    plain = generate(100, seed=5)
    extra = generate(100, seed=5, extra_field=True)
    for a, b in zip(plain, extra):
        assert isinstance(b.idea[EXTRA_FIELD], int) and 1 <= b.idea[EXTRA_FIELD] <= 5
        assert {k: v for k, v in b.idea.items() if k != EXTRA_FIELD} == a.idea


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), start=st.integers(1_600_000_000, 2_000_000_000))
def test_properties_hold_for_any_seed_and_time(seed, start):
    for v in generate(60, seed=seed, clock=StepClock(start, 0.3), update_probability=0.4):
        i = v.idea
        sign = 1 if i["SIDE"] == "Buy" else -1
        assert sign * (i["TAKE_PROFIT"] - i["PRICE"]) > 0 and sign * (i["PRICE"] - i["STOP_LOSS"]) > 0
        assert ID_PATTERN.match(i["ID"]) and TIME_PATTERN.match(i["LAST_UPDATE"])
