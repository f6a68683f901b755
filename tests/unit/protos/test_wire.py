"""Wire compatibility of protos/trading/*.proto with contract C (spec §4).

Expected bytes are derived by hand: a tag is (field_number << 3) | wire_type,
written as a varint; wire type 0 = varint, 2 = length-delimited (LEN).
Varints carry 7 bits per byte, least significant group first, high bit set on
every byte but the last.
"""

from __future__ import annotations

import pytest

from tradebus.protos import pb, pb_grpc  # noqa: F401  (pb_grpc: stubs must import)


def h(text: str) -> bytes:
    """Hex literal with spaces and '|' separators allowed for readability."""
    return bytes.fromhex(text.replace("|", " "))


# -- encoding -----------------------------------------------------------------

SUBSCRIBE_HEX = (
    "0a 05 61 63 63 2d 31"  # field 1 trading_account_id, LEN: (1<<3)|2 = 0x0a, len 5, "acc-1"
    "|12 02 01 02"  # field 2 subscriptions, packed LEN: (2<<3)|2 = 0x12, len 2, BROKER_ORDER=1, BROKER_POSITION=2
    "|28 02"  # field 5 order_delivery, varint: (5<<3)|0 = 0x28, ORDER_DELIVERY_PRIMED=2
)


def subscribe_message():
    return pb.Subscribe(
        trading_account_id="acc-1",
        subscriptions=[pb.EVENT_TYPE_BROKER_ORDER, pb.EVENT_TYPE_BROKER_POSITION],
        order_delivery=pb.ORDER_DELIVERY_PRIMED,
    )


def test_subscribe_encodes_packed_kinds():
    assert subscribe_message().SerializeToString() == h(SUBSCRIBE_HEX)


def test_stream_events_request_wraps_subscribe_in_field_1():
    request = pb.StreamEventsRequest(subscribe=subscribe_message())
    # field 1 subscribe, LEN: 0x0a, len 13 (= 7 + 4 + 2 bytes above) = 0x0d
    assert request.SerializeToString() == h("0a 0d|" + SUBSCRIBE_HEX)


def test_unsubscribe_request_uses_field_2():
    request = pb.StreamEventsRequest(unsubscribe=pb.Unsubscribe(trading_account_id="a"))
    # field 2 unsubscribe LEN: (2<<3)|2 = 0x12, len 3 | Unsubscribe field 1 LEN 0x0a, len 1, "a"
    assert request.SerializeToString() == h("12 03|0a 01 61")


# Timestamp{seconds=1700000000, nanos=500}:
#   1700000000 = 0x6553F100; 7-bit groups low first: 0x00 0x62 0x4f 0x2a 0x06
#   -> varint 80 e2 cf aa 06; 500 = 0x1f4: groups 0x74 0x03 -> varint f4 03
TIMESTAMP_HEX = "08 80 e2 cf aa 06|10 f4 03"  # seconds: (1<<3)|0 = 0x08; nanos: (2<<3)|0 = 0x10; 9 bytes


def test_trading_event_heartbeat():
    event = pb.TradingEvent(heartbeat=pb.Heartbeat())
    event.heartbeat.sent_at.seconds = 1_700_000_000
    event.heartbeat.sent_at.nanos = 500
    expected = h(
        "0a 0b"  # TradingEvent field 1 heartbeat, LEN, 11 bytes
        "|0a 09|"  # Heartbeat field 1 sent_at, LEN, 9 bytes
        + TIMESTAMP_HEX
    )
    assert event.SerializeToString() == expected


def test_trading_event_status_and_primed():
    status = pb.TradingEvent(status=pb.Status(message="subscribed"))
    # field 3 status LEN: (3<<3)|2 = 0x1a, len 12 | Status field 1 LEN 0x0a, len 10, "subscribed"
    assert status.SerializeToString() == h("1a 0c|0a 0a|" + b"subscribed".hex())
    primed = pb.TradingEvent(primed=pb.Primed(event_type=pb.EVENT_TYPE_BROKER_POSITION))
    # field 8 primed LEN: (8<<3)|2 = 0x42, len 2 | Primed field 1 varint 0x08, 2
    assert primed.SerializeToString() == h("42 02|08 02")
    error = pb.TradingEvent(error=pb.Error(message="x"))
    # field 2 error LEN: 0x12, len 3 | Error field 1 LEN 0x0a, len 1, "x"
    assert error.SerializeToString() == h("12 03|0a 01 78")


BROKER_ORDER_HEX = (
    "0a 02 6f 31"  # field 1 order_id LEN: 0x0a, len 2, "o1"
    "|18 03"  # field 3 command_seq varint: (3<<3)|0 = 0x18, 3
    "|22 00"  # field 4 external_order_id (optional) set to "": (4<<3)|2 = 0x22, len 0 -- presence kept
    "|48 02"  # field 9 order_status varint: (9<<3)|0 = 72 = 0x48, ORDER_STATUS_NEW=2
    "|82 01 02 31 30"  # field 16 quantity LEN: (16<<3)|2 = 130 -> varint 82 01, len 2, "10"
    # field 17 filled_quantity = "" has no presence: not written
    "|aa 01 00"  # field 21 client_reference_id (optional) = "": (21<<3)|2 = 170 -> aa 01, len 0
    "|ba 01 06 0a 04 0a 02 41 42"  # field 23 instrument: (23<<3)|2 = 186 -> ba 01, len 6;
    # Instrument field 1 equity LEN 0x0a len 4; Equity field 1 symbol LEN 0x0a len 2 "AB"
)


def test_broker_order_optional_presence():
    order = pb.BrokerOrder(
        order_id="o1",
        command_seq=3,
        external_order_id="",
        order_status=pb.ORDER_STATUS_NEW,
        quantity="10",
        filled_quantity="",
        client_reference_id="",
        instrument=pb.Instrument(equity=pb.Equity(symbol="AB")),
    )
    assert order.SerializeToString() == h(BROKER_ORDER_HEX)
    assert order.HasField("external_order_id")
    assert not order.HasField("limit_price")
    assert not order.HasField("average_price")


def test_broker_order_presence_survives_decoding():
    order = pb.BrokerOrder.FromString(h(BROKER_ORDER_HEX))
    assert order.HasField("external_order_id") and order.external_order_id == ""
    assert order.HasField("client_reference_id")
    assert not order.HasField("limit_price") and not order.HasField("stop_price")
    assert order.command_seq == 3 and order.quantity == "10" and order.filled_quantity == ""
    assert order.instrument.WhichOneof("instrument") == "equity"
    assert order.instrument.equity.symbol == "AB"
    assert not order.instrument.equity.HasField("exchange")


BROKER_TRADE_HEX = (
    "0a 01 61"  # field 1 account_id LEN, "a"
    "|12 01 62"  # field 2 order_id LEN: 0x12, "b"
    "|28 02"  # field 5 side varint: 0x28, ORDER_SIDE_SELL=2
    "|32 01 35"  # field 6 quantity LEN: (6<<3)|2 = 0x32, "5"
    "|3a 03 31 2e 35"  # field 7 price LEN: (7<<3)|2 = 0x3a, "1.5"
    "|42 02 08 01"  # field 8 received_at LEN: (8<<3)|2 = 0x42, len 2; Timestamp seconds=1
    "|52 01 78"  # field 10 exec_id LEN: (10<<3)|2 = 82 = 0x52, "x"
    "|5a 01 35"  # field 11 cumulative_quantity LEN: (11<<3)|2 = 90 = 0x5a, "5"
    "|6a 01 30"  # field 13 leaves_quantity LEN: (13<<3)|2 = 106 = 0x6a, "0"
)


def test_broker_trade():
    trade = pb.BrokerTrade(
        account_id="a",
        order_id="b",
        side=pb.ORDER_SIDE_SELL,
        quantity="5",
        price="1.5",
        exec_id="x",
        cumulative_quantity="5",
        leaves_quantity="0",
    )
    trade.received_at.seconds = 1
    assert trade.SerializeToString() == h(BROKER_TRADE_HEX)
    event = pb.TradingEvent(broker_trade=trade)
    # field 6 broker_trade LEN: (6<<3)|2 = 0x32, len 3+3+2+3+5+4+3+3+3 = 29 = 0x1d
    assert event.SerializeToString() == h("32 1d|" + BROKER_TRADE_HEX)


def test_intent_action_and_position_tags():
    action = pb.IntentAction(seq=2, action_type=pb.INTENT_ACTION_TYPE_REPLACE, time_in_force=pb.TIME_IN_FORCE_DAY)
    # field 4 seq varint 0x20, 2 | field 5 action_type 0x28, REPLACE=2 | field 12 time_in_force (optional)
    # varint: (12<<3)|0 = 96 = 0x60, DAY=1
    assert action.SerializeToString() == h("20 02|28 02|60 01")
    unset_tif = pb.IntentAction(time_in_force=pb.TIME_IN_FORCE_UNSPECIFIED)
    # optional enum set to its zero value is still written: 0x60 0x00
    assert unset_tif.SerializeToString() == h("60 00")
    position = pb.BrokerPosition(quantity="-3", average_cost="12.5000", realized_pnl="0")
    # field 3 quantity LEN 0x1a "-3" | field 4 average_cost LEN 0x22 "12.5000" | field 10 realized_pnl
    # LEN (10<<3)|2 = 0x52 "0"
    assert position.SerializeToString() == h("1a 02 2d 33|22 07|" + b"12.5000".hex() + "|52 01 30")


# -- decoding -----------------------------------------------------------------


def test_decode_unpacked_repeated_enum():
    # field 2 as separate varints: (2<<3)|0 = 0x10 -- parsers must accept it (proto3 packs by default)
    data = h("0a 05 61 63 63 2d 31|10 01|10 03|28 02")
    sub = pb.Subscribe.FromString(data)
    assert sub.trading_account_id == "acc-1"
    assert list(sub.subscriptions) == [pb.EVENT_TYPE_BROKER_ORDER, pb.EVENT_TYPE_BROKER_TRADE]
    assert sub.order_delivery == pb.ORDER_DELIVERY_PRIMED


def test_decode_mixed_packed_and_unpacked_and_unknown_enum_value():
    # packed [1, 2] then unpacked 4, then unpacked 9 (not a known EventType: proto3 enums are open)
    sub = pb.Subscribe.FromString(h("12 02 01 02|10 04|10 09"))
    assert list(sub.subscriptions) == [1, 2, 4, 9]


def test_decode_stream_events_request_oneof():
    request = pb.StreamEventsRequest.FromString(h("12 03|0a 01 61"))
    assert request.WhichOneof("msg") == "unsubscribe"
    assert request.unsubscribe.trading_account_id == "a"


def test_decode_heartbeat_event():
    event = pb.TradingEvent.FromString(h("0a 0b|0a 09|" + TIMESTAMP_HEX))
    assert event.WhichOneof("event") == "heartbeat"
    assert (event.heartbeat.sent_at.seconds, event.heartbeat.sent_at.nanos) == (1_700_000_000, 500)


def test_decode_broker_trade_event():
    event = pb.TradingEvent.FromString(h("32 1d|" + BROKER_TRADE_HEX))
    trade = event.broker_trade
    assert (trade.exec_id, trade.cumulative_quantity, trade.leaves_quantity) == ("x", "5", "0")
    assert not trade.HasField("order_quantity") and not trade.HasField("instrument")


# -- descriptor tables (spec §4.1, §4.2) -----------------------------------------

# "number name type [opt]" per field; message types are given by simple name.
SPEC_FIELDS = {
    "BrokerOrder": """1 order_id string; 2 intent_id string; 3 command_seq int64; 4 external_order_id string opt;
        5 account_id string; 6 broker Broker; 7 symbol string; 8 order_state OrderState; 9 order_status OrderStatus;
        10 order_type OrderType; 11 order_side OrderSide; 12 limit_price string opt; 13 stop_price string opt;
        14 average_price string opt; 15 order_venue OrderVenue; 16 quantity string; 17 filled_quantity string;
        18 time_in_force TimeInForce; 19 received_at Timestamp; 20 organization_id string;
        21 client_reference_id string opt; 22 broker_sent_at Timestamp; 23 instrument Instrument""",
    "BrokerPosition": """1 account_id string; 2 symbol string; 3 quantity string; 4 average_cost string;
        5 received_at Timestamp; 6 organization_id string; 7 broker Broker; 8 broker_sent_at Timestamp;
        9 instrument Instrument; 10 realized_pnl string opt; 11 daily_pnl string opt; 12 value_bought string opt;
        13 value_sold string opt""",
    "BrokerTrade": """1 account_id string; 2 order_id string; 3 client_order_id string; 4 symbol string;
        5 side OrderSide; 6 quantity string; 7 price string; 8 received_at Timestamp; 9 organization_id string;
        10 exec_id string opt; 11 cumulative_quantity string opt; 12 order_quantity string opt;
        13 leaves_quantity string opt; 14 broker_sent_at Timestamp; 15 instrument Instrument""",
    "IntentAction": """1 intent_id string; 2 organization_id string; 3 account_id string; 4 seq int64;
        5 action_type IntentActionType; 6 symbol string; 7 order_side OrderSide; 8 order_type OrderType;
        9 limit_price string opt; 10 stop_price string opt; 11 order_venue OrderVenue;
        12 time_in_force TimeInForce opt; 13 quantity string; 14 client_reference_id string opt;
        15 principal_type IntentPrincipalType; 16 received_at Timestamp; 17 created_at Timestamp""",
    "Subscribe": """1 trading_account_id string; 2 subscriptions EventType rep; 3 instrument_key string;
        4 instrument_class string; 5 order_delivery OrderDelivery""",
    "TradingEvent": """1 heartbeat Heartbeat; 2 error Error; 3 status Status; 4 broker_order BrokerOrder;
        5 broker_position BrokerPosition; 6 broker_trade BrokerTrade; 7 intent_action IntentAction;
        8 primed Primed""",
    "Equity": "1 symbol string; 2 exchange string opt",
    "OptionInstrument": """1 symbol string; 2 underlying string; 3 expiration Timestamp; 4 strike string;
        5 option_type OptionType; 6 exercise_style ExerciseStyle; 7 multiplier string; 8 exchange string opt;
        9 tick_size string opt""",
}


def _describe(field) -> str:
    if field.message_type is not None:
        kind = field.message_type.name
    elif field.enum_type is not None:
        kind = field.enum_type.name
    else:
        kind = {9: "string", 3: "int64", 5: "int32", 13: "uint32"}[field.type]
    text = f"{field.number} {field.name} {kind}"
    if field.is_repeated:
        text += " rep"
    # proto3 `optional` on a scalar creates a synthetic oneof; message fields always have presence
    elif field.containing_oneof is not None and field.containing_oneof.name.startswith("_"):
        if field.message_type is None:
            text += " opt"
    return text


@pytest.mark.parametrize("message_name", sorted(SPEC_FIELDS))
def test_fields_match_spec_table(message_name):
    expected = [" ".join(part.split()) for part in SPEC_FIELDS[message_name].split(";")]
    descriptor = getattr(pb, message_name).DESCRIPTOR
    assert [_describe(f) for f in sorted(descriptor.fields, key=lambda f: f.number)] == expected


def test_oneofs_and_service_paths():
    assert [f.name for f in pb.TradingEvent.DESCRIPTOR.oneofs_by_name["event"].fields][0] == "heartbeat"
    assert {f.name for f in pb.StreamEventsRequest.DESCRIPTOR.oneofs_by_name["msg"].fields} == {
        "subscribe",
        "unsubscribe",
    }
    service = pb.DESCRIPTOR.pool.FindServiceByName("trading.TradingService")
    methods = {m.name: m for m in service.methods}
    stream, subscribe = methods["StreamEvents"], methods["SubscribeEvents"]
    assert (stream.client_streaming, stream.server_streaming) == (True, True)
    assert (subscribe.client_streaming, subscribe.server_streaming) == (False, True)
    assert stream.input_type.full_name == "trading.StreamEventsRequest"
    assert subscribe.input_type.full_name == "trading.Subscribe"
    assert stream.output_type.full_name == subscribe.output_type.full_name == "trading.TradingEvent"


def test_enum_numbers():
    assert [pb.EventType.Value(n) for n in ("EVENT_TYPE_UNSPECIFIED", "EVENT_TYPE_BROKER_ORDER",
                                             "EVENT_TYPE_BROKER_POSITION", "EVENT_TYPE_BROKER_TRADE",
                                             "EVENT_TYPE_INTENT_ACTION")] == [0, 1, 2, 3, 4]
    assert pb.OrderDelivery.Value("ORDER_DELIVERY_PRIMED") == 2
    assert pb.OrderStatus.Value("ORDER_STATUS_REJECTED") == 10
    assert pb.OrderVenue.Value("ORDER_VENUE_NYSE") == 9
    assert pb.OrderType.Value("ORDER_TYPE_TRAILING_STOP") == 10
    assert pb.TimeInForce.Value("TIME_IN_FORCE_AT_CLOSE") == 7
    assert pb.FutureMonth.Value("FUTURE_MONTH_DECEMBER") == 12
    assert pb.AssetClass.Value("ASSET_CLASS_PREDICTION") == 7
