"""Protobuf -> Avro record conversion: exact decimal strings, enum names,
UTC timestamps, flattened instruments, upstream bytes kept exactly."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import fastavro
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from producers.anthid import wire
from producers.anthid.convert import DATA_KINDS, convert_data, decode_event
from producers.anthid.instruments import convert_instrument
from producers.anthid.values import ConversionError, enum_name
from tests import samples
from tests.unit.producers.anthid import events
from tradebus.protos import pb
from tradebus.serde import parsed_schema


def convert(member):
    raw = events.wrap(member)
    event = decode_event(raw)
    return convert_data(DATA_KINDS[event.WhichOneof("event")], event, raw)


def varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def encodes(full_name: str, record: dict) -> None:
    """The record (with metadata added) is valid for its Avro schema."""
    record = {**record, "metadata": samples.metadata("anthid", "x")}
    assert fastavro.validation.validate(record, parsed_schema(full_name), raise_errors=True)


def test_order_fields_exact():
    key, record = convert(events.order())
    assert key == "o-1"
    assert record["limit_price"] == "123.4500"  # trailing zeros kept
    assert record["average_price"] == "123.44000000000000000001"  # beyond float precision, unchanged
    assert record["filled_quantity"] == "40.000000001"
    assert record["stop_price"] is None and record["external_order_id"] is None  # absent = unknown, not zero
    assert record["order_status"] == "ORDER_STATUS_PARTIALLY_FILLED"
    assert (record["broker"], record["order_side"], record["order_venue"]) == ("BROKER_ALPACA", "ORDER_SIDE_BUY", "ORDER_VENUE_SMART")
    assert record["time_in_force"] == "TIME_IN_FORCE_DAY" and record["order_state"] == "ORDER_STATE_OPEN"
    assert record["command_seq"] == 3 and record["client_reference_id"] == "ref-7"
    assert record["received_at"] == datetime(2026, 4, 22, 12, 37, 59, 123456, tzinfo=timezone.utc)
    assert record["broker_sent_at"] is None
    assert record["instrument"] == {"kind": "equity", "symbol": "AAPL", "exchange": "XNAS",
                                    "attributes_json": '{"symbol":"AAPL","exchange":"XNAS"}'}
    encodes("tradebus.v1.BrokerOrder", record)


def test_upstream_protobuf_is_the_member_exactly_as_received():
    member = events.order()
    raw = events.wrap(member)
    _, record = convert(member)
    assert record["upstream_protobuf"] == member.SerializeToString()
    assert raw.endswith(record["upstream_protobuf"])
    assert pb.BrokerOrder.FromString(record["upstream_protobuf"]) == member


def test_unknown_fields_survive_in_upstream_bytes():
    # A newer server adds field 99 to BrokerTrade: the record keeps those bytes.
    member_bytes = events.trade().SerializeToString() + bytes([0x9A, 0x06, 0x02]) + b"hi"  # field 99, LEN 2
    raw = bytes([0x32]) + varint(len(member_bytes)) + member_bytes  # TradingEvent field 6, LEN
    event = decode_event(raw)
    _, record = convert_data(DATA_KINDS["broker_trade"], event, raw)
    assert record["upstream_protobuf"] == member_bytes


def test_position_key_and_optionals():
    key, record = convert(events.position())
    assert key == f"{events.ACCOUNT}|AAPL"
    assert record["quantity"] == "-40" and record["average_cost"] == "123.4400"
    assert record["realized_pnl"] == "-1.50" and record["daily_pnl"] is None and record["value_sold"] is None
    assert record["instrument"] is None  # absent instrument on a position means unknown (spec §4.5)
    assert record["broker"] == "BROKER_LIGHTSPEED_CONNECT"
    assert record["broker_sent_at"] == datetime(2026, 4, 22, 12, 37, 58, 0, tzinfo=timezone.utc)  # 999 ns truncated
    encodes("tradebus.v1.BrokerPosition", record)


def test_trade_key_and_fields():
    key, record = convert(events.trade())
    assert key == f"{events.ACCOUNT}|b-1"
    assert record["side"] == "ORDER_SIDE_SELL_SHORT"
    assert (record["quantity"], record["price"], record["leaves_quantity"]) == ("40", "123.44", "60")
    encodes("tradebus.v1.BrokerTrade", record)


def test_intent_action_optional_enum():
    key, record = convert(events.intent_action())
    assert key == "i-1"
    assert record["time_in_force"] is None  # optional enum, absent
    assert record["principal_type"] == "INTENT_PRINCIPAL_TYPE_API_KEY"
    assert record["created_at"] == datetime(2026, 4, 22, 12, 37, 58, tzinfo=timezone.utc)
    _, record = convert(events.intent_action(time_in_force=pb.TIME_IN_FORCE_UNSPECIFIED))
    assert record["time_in_force"] == "TIME_IN_FORCE_UNSPECIFIED"  # present, even at 0
    encodes("tradebus.v1.IntentAction", record)


@pytest.mark.parametrize("value", ["1", "-1", "+1", "0.5", ".5", "5.", "123.4500", "1e-9", "1E+12",
                                   "0.000000000000000000000000000001", "99999999999999999999999999999999.9"])
def test_valid_decimals_pass_unchanged(value):
    _, record = convert(events.trade(price=value))
    assert record["price"] == value


@pytest.mark.parametrize("value", ["", " 1", "1 ", "1,5", "NaN", "Infinity", "-", ".", "1.2.3", "0x10", "١٢٣", "1e"])
def test_invalid_decimal_is_a_conversion_failure(value):
    with pytest.raises(ConversionError) as info:
        convert(events.trade(price=value))
    assert info.value.reason == "invalid_decimal" and "BrokerTrade.price" in str(info.value)


def test_present_but_empty_optional_decimal_is_invalid():
    with pytest.raises(ConversionError, match="limit_price"):
        convert(events.order(limit_price=""))


def test_order_without_instrument_is_a_conversion_failure():
    member = events.order()
    member.ClearField("instrument")
    with pytest.raises(ConversionError) as info:
        convert(member)
    assert info.value.reason == "missing_instrument"
    with pytest.raises(ConversionError):  # present but no member set: just as unknown
        convert(events.order(instrument=pb.Instrument()))


def test_missing_received_at_and_identity_are_conversion_failures():
    member = events.order()
    member.ClearField("received_at")
    with pytest.raises(ConversionError, match="received_at"):
        convert(member)
    with pytest.raises(ConversionError, match="order_id"):
        convert(events.order(order_id=""))
    with pytest.raises(ConversionError, match="symbol"):
        convert(events.position(symbol=""))


def test_unknown_enum_number_keeps_the_data():
    assert enum_name(pb.OrderStatus, 42) == "UNRECOGNIZED_42"
    raw = events.wrap(events.order())
    event = decode_event(raw)
    event.broker_order.order_status = 42  # open enums accept unknown numbers
    _, record = convert_data(DATA_KINDS["broker_order"], event, event.SerializeToString())
    assert record["order_status"] == "UNRECOGNIZED_42"


def test_undecodable_bytes():
    with pytest.raises(ConversionError) as info:
        decode_event(b"\x22\xff\xff")  # field 4 LEN with a truncated length
    assert info.value.reason == "undecodable"


INSTRUMENTS = [
    (pb.Instrument(future=pb.Future(symbol="ESZ6", root="ES", exchange="XCME", tick_size="0.25", multiplier="50",
                                    currency="USD", expiration=Timestamp(seconds=1797465600))),
     "future", "ESZ6", "XCME",
     {"symbol": "ESZ6", "root": "ES", "exchange": "XCME", "expiration": "2026-12-17T00:00:00Z", "tick_size": "0.25",
      "multiplier": "50", "currency": "USD"}),
    (pb.Instrument(option_instrument=pb.OptionInstrument(symbol="AAPL261218C00200000", underlying="AAPL", strike="200.000",
                                                         option_type=pb.OPTION_TYPE_CALL, exercise_style=pb.EXERCISE_STYLE_AMERICAN,
                                                         multiplier="100")),
     "option_instrument", "AAPL261218C00200000", None,
     {"symbol": "AAPL261218C00200000", "underlying": "AAPL", "strike": "200.000", "option_type": "OPTION_TYPE_CALL",
      "exercise_style": "EXERCISE_STYLE_AMERICAN", "multiplier": "100"}),
    (pb.Instrument(currency=pb.Currency(symbol="EUR/USD", base="EUR", quote="USD")), "currency", "EUR/USD", None,
     {"symbol": "EUR/USD", "base": "EUR", "quote": "USD"}),
    (pb.Instrument(crypto=pb.Crypto(symbol="BTC-USD", base="BTC", quote="USD", venue="COINBASE", price_increment="0.01",
                                    quantity_increment="0.00000001")),
     "crypto", "BTC-USD", "COINBASE",
     {"symbol": "BTC-USD", "base": "BTC", "quote": "USD", "venue": "COINBASE", "price_increment": "0.01",
      "quantity_increment": "0.00000001"}),
    (pb.Instrument(perpetual=pb.Perpetual(symbol="BTC-PERP", base="BTC", quote="USD", venue="X", underlying=pb.PERPETUAL_UNDERLYING_CRYPTO,
                                          settlement=pb.SETTLEMENT_INVERSE, funding=pb.FundingSchedule(interval_seconds=28800))),
     "perpetual", "BTC-PERP", "X",
     {"symbol": "BTC-PERP", "base": "BTC", "quote": "USD", "venue": "X", "underlying": "PERPETUAL_UNDERLYING_CRYPTO",
      "settlement": "SETTLEMENT_INVERSE", "funding": {"interval_seconds": 28800}}),
    (pb.Instrument(prediction=pb.Prediction(symbol="RAIN-NYC", market="rain", outcome=pb.PREDICTION_OUTCOME_YES, payout="1.00")),
     "prediction", "RAIN-NYC", None,
     {"symbol": "RAIN-NYC", "market": "rain", "outcome": "PREDICTION_OUTCOME_YES", "payout": "1.00"}),
    (pb.Instrument(equity=pb.Equity(symbol="MSFT")), "equity", "MSFT", None, {"symbol": "MSFT"}),
]


@pytest.mark.parametrize("instrument, kind, symbol, exchange, attributes", INSTRUMENTS, ids=[i[1] for i in INSTRUMENTS])
def test_instrument_members_flatten(instrument, kind, symbol, exchange, attributes):
    flat = convert_instrument(instrument, mandatory=True, owner="x")
    assert (flat["kind"], flat["symbol"], flat["exchange"]) == (kind, symbol, exchange)
    assert json.loads(flat["attributes_json"]) == attributes
    _, record = convert(events.trade(instrument=instrument))
    encodes("tradebus.v1.BrokerTrade", record)


def test_equity_with_empty_but_present_exchange():
    flat = convert_instrument(pb.Instrument(equity=pb.Equity(symbol="X", exchange="")), mandatory=False, owner="x")
    assert flat["exchange"] == ""  # present: the upstream said "", we do not invent None


def test_field_bytes_slices_the_single_member():
    assert wire.field_bytes(bytes([0x22, 0x02, 0x0A, 0x00]), 4) == bytes([0x0A, 0x00])
    assert wire.field_bytes(bytes([0x22, 0x00, 0x22, 0x00]), 4) is None  # repeated: merged on parse
    assert wire.field_bytes(bytes([0x08, 0x96, 0x01]), 4) is None  # varint field only
    with pytest.raises(ValueError):
        wire.field_bytes(bytes([0x22, 0x05, 0x00]), 4)
