"""Idea JSON -> HtiIdea record: percentages, time zones, unknown fields, errors."""

import json
from datetime import datetime, timezone

import pytest

from producers.hti.convert import (
    ConversionError, history_idea_texts, idea_record, parse_idea_time, parse_json_object, parse_percent, zone_for,
)
from tests.samples import metadata
from tradebus.serde import AvroRecordSerializer, AvroRecordDeserializer

UTC = timezone.utc
NY = zone_for("America/New_York")
FIXED = zone_for("fixed-utc-5")

DOC_IDEA = {  # spec §3, example B
    "ASSET_CLASS": "ETFS", "CREATION_TIME": "2026-04-22 09:15:05 EST", "SIDE": "Sell", "INSTRUMENT": "GLD",
    "LAST_UPDATE": "2026-04-22 09:17:47 EST", "CONFIDENCE": "90%", "ESTIMATED_PL": "+1.15%", "PREFIX": "HTI12",
    "EXPIRATION_TIME": "2026-04-22 10:17:47 EST", "STOP_LOSS": 448.0495,
    "DESCRIPTION": "Oversold conditions for GLD\nintroduce significant risk.", "OPEN_ORDER_TYPE": "SELL LIMIT",
    "ID": "HTI12_TB_GLD_M15_20260422_090000", "TIMEFRAME": "M15", "PRICE": 437.9699, "TAKE_PROFIT": 432.9301,
    "document_id": "HTI12_TB_GLD_M15_20260422_090000", "idea_id": "HTI12_TB_GLD_M15_20260422_090000",
}


def convert(idea, zone=NY):
    text = json.dumps(idea)
    return idea_record(parse_json_object(text), text, zone, metadata())


@pytest.mark.parametrize("text,expected", [
    ("90%", 0.9), ("+1.15%", 0.0115), ("-0.63%", -0.0063), ("0%", 0.0), ("100%", 1.0), ("+0.63%", 0.0063),
    (" 75% ", 0.75), ("12.5%", 0.125),
])
def test_percentages_become_fractions(text, expected):
    assert parse_percent(text, "CONFIDENCE") == expected


@pytest.mark.parametrize("bad", ["90", "ninety%", "%", "1.15 %", "+-1%", 90, 0.9, True, "", "1e2%"])
def test_bad_percentages_rejected(bad):
    with pytest.raises(ConversionError) as info:
        parse_percent(bad, "CONFIDENCE")
    assert info.value.reason == "bad_percent"


def test_missing_percentage_is_null():
    assert parse_percent(None, "CONFIDENCE") is None


def test_doc_example_times_with_new_york_rule_are_daylight_time():
    # 2026-04-22 is EDT (UTC-4) whatever the label says (spec O1): 09:17:47 -> 13:17:47Z, before served_at 13:24:00Z.
    assert parse_idea_time("2026-04-22 09:17:47 EST", "LAST_UPDATE", NY) == datetime(2026, 4, 22, 13, 17, 47, tzinfo=UTC)


def test_winter_time_and_fixed_rule():
    assert parse_idea_time("2026-01-15 09:00:00 EST", "T", NY) == datetime(2026, 1, 15, 14, 0, tzinfo=UTC)
    assert parse_idea_time("2026-04-22 09:17:47 EST", "T", FIXED) == datetime(2026, 4, 22, 14, 17, 47, tzinfo=UTC)


def test_dst_transitions():
    # Spring forward 2026-03-08 02:00 -> 03:00: a skipped wall time reads with the pre-transition offset (UTC-5).
    assert parse_idea_time("2026-03-08 01:59:59 EST", "T", NY) == datetime(2026, 3, 8, 6, 59, 59, tzinfo=UTC)
    assert parse_idea_time("2026-03-08 02:30:00 EST", "T", NY) == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    assert parse_idea_time("2026-03-08 03:00:00 EST", "T", NY) == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    # Fall back 2026-11-01 02:00 -> 01:00: the repeated hour takes its first occurrence (EDT).
    assert parse_idea_time("2026-11-01 01:30:00 EST", "T", NY) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    assert parse_idea_time("2026-11-01 02:30:00 EST", "T", NY) == datetime(2026, 11, 1, 7, 30, tzinfo=UTC)


@pytest.mark.parametrize("bad", [
    "2026-04-22 09:17:47", "2026-04-22T09:17:47 EST", "2026-04-22 09:17:47 EDT", "2026-13-22 09:17:47 EST",
    "2026-04-22 9:17:47 EST", "2026-04-22 09:17:47.5 EST", 1776864000, None, "",
])
def test_bad_times_rejected(bad):
    with pytest.raises(ConversionError) as info:
        parse_idea_time(bad, "LAST_UPDATE", NY)
    assert info.value.reason == "bad_time"


def test_unknown_zone_rule():
    with pytest.raises(ValueError, match="unknown time zone"):
        zone_for("Nowhere/Special")
    assert parse_idea_time("2026-04-22 09:00:00 EST", "T", zone_for("UTC")) == datetime(2026, 4, 22, 9, tzinfo=UTC)


def test_doc_idea_converted():
    record = convert(DOC_IDEA)
    assert record["idea_id"] == record["id"] == record["document_id"] == "HTI12_TB_GLD_M15_20260422_090000"
    assert record["confidence"] == 0.9 and record["estimated_pl"] == 0.0115
    assert record["price"] == 437.9699 and record["take_profit"] == 432.9301 and record["stop_loss"] == 448.0495
    assert record["last_update"] == datetime(2026, 4, 22, 13, 17, 47, tzinfo=UTC)
    assert record["creation_time"] == datetime(2026, 4, 22, 13, 15, 5, tzinfo=UTC)
    assert record["expiration_time"] == datetime(2026, 4, 22, 14, 17, 47, tzinfo=UTC)
    assert record["last_update_text"] == "2026-04-22 09:17:47 EST"
    assert record["description"].endswith("significant risk.") and "\n" in record["description"]
    assert (record["side"], record["open_order_type"], record["timeframe"]) == ("Sell", "SELL LIMIT", "M15")
    assert record["unknown_fields"] == {}
    assert json.loads(record["upstream_json"]) == DOC_IDEA


def test_unknown_fields_kept_as_json_text():
    idea = {**DOC_IDEA, "RISK_SCORE": 3, "TAGS": ["a", "ü"], "NOTE": "x", "NESTED": {"k": None}}
    record = convert(idea)
    assert record["unknown_fields"] == {"RISK_SCORE": "3", "TAGS": '["a","ü"]', "NOTE": '"x"', "NESTED": '{"k":null}'}


def test_idea_id_falls_back_to_id_and_optional_fields_null():
    idea = {"ID": "X1", "LAST_UPDATE": "2026-04-22 09:17:47 EST"}
    record = convert(idea)
    assert record["idea_id"] == "X1" and record["id"] == "X1" and record["price"] is None
    assert record["confidence"] is None and record["creation_time"] is None
    assert convert({**idea, "idea_id": ""})["idea_id"] == "X1"
    assert convert({**idea, "idea_id": "Y"})["idea_id"] == "Y"
    assert convert({**idea, "PRICE": 437})["price"] == 437.0


@pytest.mark.parametrize("idea,reason", [
    ({"LAST_UPDATE": "2026-04-22 09:17:47 EST"}, "missing_idea_id"),
    ({"ID": 17, "LAST_UPDATE": "2026-04-22 09:17:47 EST"}, "missing_idea_id"),
    ({"ID": "X"}, "missing_last_update"),
    ({"ID": "X", "LAST_UPDATE": "yesterday"}, "bad_time"),
    ({"ID": "X", "LAST_UPDATE": 5}, "bad_time"),
    ({"ID": "X", "LAST_UPDATE": "2026-04-22 09:17:47 EST", "CREATION_TIME": "soon"}, "bad_time"),
    ({"ID": "X", "LAST_UPDATE": "2026-04-22 09:17:47 EST", "CONFIDENCE": "high"}, "bad_percent"),
    ({"ID": "X", "LAST_UPDATE": "2026-04-22 09:17:47 EST", "PRICE": "437.9"}, "bad_field_type"),
    ({"ID": "X", "LAST_UPDATE": "2026-04-22 09:17:47 EST", "PRICE": True}, "bad_field_type"),
    ({"ID": "X", "LAST_UPDATE": "2026-04-22 09:17:47 EST", "SIDE": 1}, "bad_field_type"),
])
def test_bad_ideas_rejected_with_reason(idea, reason):
    with pytest.raises(ConversionError) as info:
        convert(idea)
    assert info.value.reason == reason


@pytest.mark.parametrize("text,reason", [
    ("{not json", "invalid_json"), ("", "invalid_json"), ('{"PRICE": NaN}', "invalid_json"), ("[1, 2]", "not_an_object"),
    ('"text"', "not_an_object"), ("null", "not_an_object"),
])
def test_unparsable_text(text, reason):
    with pytest.raises(ConversionError) as info:
        parse_json_object(text)
    assert info.value.reason == reason


def test_history_ideas_sliced_exactly_as_sent():
    first = '{"ID" : "A",  "LAST_UPDATE":"2026-04-22 09:17:47 EST", "DESCRIPTION": "caf\\u00e9\\nx"}'
    second = '{\n  "idea_id": "B",\n  "LAST_UPDATE": "2026-04-22 09:18:00 EST"\n}'
    body = ('{"status": "ok", "profile": {"ideas": "not this"}, "count": 3, "limit": 10,\n "ideas" : [ ' + first
            + ' ,\n' + second + ', 42 ], "served_at": "2026-04-22T13:24:00Z"}')
    envelope, items = history_idea_texts(body)
    assert envelope["count"] == 3
    assert [text for _, text in items] == [first, second, "42"]
    assert items[0][0]["DESCRIPTION"] == "café\nx" and items[2][0] == 42


def test_history_edge_cases():
    assert history_idea_texts('{"ideas": []}')[1] == []
    assert history_idea_texts('  {"x": {"ideas": [1]}, "ideas":[{"a":1}]}  ')[1] == [({"a": 1}, '{"a":1}')]
    for bad, reason in [('{"ideas": 5}', "bad_history"), ('{"status": "ok"}', "bad_history"), ("[]", "not_an_object"),
                        ("<html>", "invalid_json")]:
        with pytest.raises(ConversionError) as info:
            history_idea_texts(bad)
        assert info.value.reason == reason


def test_record_round_trips_through_the_avro_schema():
    record = convert({**DOC_IDEA, "RISK_SCORE": 3})
    data = AvroRecordSerializer(1, "tradebus.v1.HtiIdea")(record)

    class Registry:
        def get_schema(self, _id):
            from tradebus.serde import schema_text

            return type("S", (), {"schema_str": schema_text("tradebus.v1.HtiIdea")})()

    decoded = AvroRecordDeserializer(Registry())(data)
    assert decoded["confidence"] == 0.9 and decoded["unknown_fields"] == {"RISK_SCORE": "3"}
    assert decoded["last_update"] == datetime(2026, 4, 22, 13, 17, 47, tzinfo=UTC)
