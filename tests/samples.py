"""One valid record per value schema, for round-trip and wire tests."""

from datetime import datetime, timezone

T0 = datetime(2026, 4, 22, 13, 17, 47, 123456, tzinfo=timezone.utc)


def metadata(source="hti", event="idea", replay=False):
    return {"source": source, "producer_instance": "test-1", "received_at": T0, "upstream_event": event, "replay": replay}


def hti_idea():
    return {
        "metadata": metadata(), "idea_id": "HTI12_TB_GLD_M15_20260422_090000", "id": "HTI12_TB_GLD_M15_20260422_090000",
        "document_id": "HTI12_TB_GLD_M15_20260422_090000", "prefix": "HTI12", "asset_class": "ETFS", "instrument": "GLD",
        "timeframe": "M15", "side": "Sell", "open_order_type": "SELL LIMIT", "price": 437.9699, "take_profit": 432.9301,
        "stop_loss": 448.0495, "confidence": 0.9, "estimated_pl": 0.0115, "description": "two\nlines",
        "creation_time": datetime(2026, 4, 22, 13, 15, 5, tzinfo=timezone.utc), "last_update": datetime(2026, 4, 22, 13, 17, 47, tzinfo=timezone.utc),
        "expiration_time": datetime(2026, 4, 22, 14, 17, 47, tzinfo=timezone.utc), "last_update_text": "2026-04-22 09:17:47 EST",
        "unknown_fields": {"RISK_SCORE": "3"}, "upstream_json": '{"ID": "HTI12_TB_GLD_M15_20260422_090000"}',
    }


def instrument():
    return {"kind": "equity", "symbol": "AAPL", "exchange": "XNAS", "attributes_json": '{"symbol":"AAPL","exchange":"XNAS"}'}


def broker_order():
    return {
        "metadata": metadata("anthid", "broker_order"), "order_id": "o-1", "intent_id": "i-1", "command_seq": 1,
        "external_order_id": None, "account_id": "a-1", "broker": "BROKER_ALPACA", "symbol": "AAPL",
        "order_state": "ORDER_STATE_OPEN", "order_status": "ORDER_STATUS_PARTIALLY_FILLED", "order_type": "ORDER_TYPE_LIMIT",
        "order_side": "ORDER_SIDE_BUY", "limit_price": "123.4500", "stop_price": None, "average_price": "123.4400",
        "order_venue": "ORDER_VENUE_SMART", "quantity": "100", "filled_quantity": "40.000000001",
        "time_in_force": "TIME_IN_FORCE_DAY", "received_at": T0, "organization_id": "org-1", "client_reference_id": "ref",
        "broker_sent_at": None, "instrument": instrument(), "upstream_protobuf": b"\x0a\x03o-1",
    }


def broker_position():
    return {
        "metadata": metadata("anthid", "broker_position", True), "account_id": "a-1", "symbol": "AAPL", "quantity": "40",
        "average_cost": "123.4400", "received_at": T0, "organization_id": "org-1", "broker": "BROKER_ALPACA",
        "broker_sent_at": T0, "instrument": None, "realized_pnl": "-1.50", "daily_pnl": None, "value_bought": "4937.60",
        "value_sold": None, "upstream_protobuf": b"\x0a\x03a-1",
    }


def broker_trade():
    return {
        "metadata": metadata("anthid", "broker_trade"), "account_id": "a-1", "order_id": "b-1", "client_order_id": "o-1",
        "symbol": "AAPL", "side": "ORDER_SIDE_BUY", "quantity": "40", "price": "123.44", "received_at": T0,
        "organization_id": "org-1", "exec_id": "e-1", "cumulative_quantity": "40", "order_quantity": "100",
        "leaves_quantity": "60", "broker_sent_at": None, "instrument": instrument(), "upstream_protobuf": b"\x0a\x03a-1",
    }


def intent_action():
    return {
        "metadata": metadata("anthid", "intent_action"), "intent_id": "i-1", "organization_id": "org-1", "account_id": "a-1",
        "seq": 1, "action_type": "INTENT_ACTION_TYPE_CREATE", "symbol": "AAPL", "order_side": "ORDER_SIDE_BUY",
        "order_type": "ORDER_TYPE_LIMIT", "limit_price": "123.4500", "stop_price": None, "order_venue": "ORDER_VENUE_SMART",
        "time_in_force": None, "quantity": "100", "client_reference_id": None, "principal_type": "INTENT_PRINCIPAL_TYPE_API_KEY",
        "received_at": T0, "created_at": T0, "upstream_protobuf": b"",
    }


def status_event():
    return {
        "source": "anthid", "producer_instance": "test-1", "emitted_at": T0, "kind": "primed", "message": None,
        "event_type": "EVENT_TYPE_BROKER_ORDER", "upstream_time": None, "details": {"scope": "org"}, "upstream_payload": b"\x42\x02\x08\x01",
    }


def dead_letter():
    return {
        "source": "hti", "producer_instance": "test-1", "received_at": T0, "stage": "parse", "reason": "invalid JSON",
        "error_type": "JSONDecodeError", "upstream_event": "idea", "payload_encoding": "text", "payload": b"{not json",
        "target_topic": "hti.ideas.v1", "details": {},
    }


def alert():
    return {
        "alert_id": "al-1", "rule": "big-fill", "alert_key": "big-fill:o-1", "severity": "warning", "title": "Big fill",
        "message": "AAPL 40 @ 123.44", "fired_at": T0, "source_topic": "anthid.broker-trades.unique.v1", "source_key": "a-1|b-1",
        "event_time": T0, "deliveries": [{"sink": "log", "status": "delivered", "attempts": 1, "error": None}], "details": {},
    }


BY_SCHEMA = {
    "tradebus.v1.HtiIdea": hti_idea, "tradebus.v1.BrokerOrder": broker_order, "tradebus.v1.BrokerPosition": broker_position,
    "tradebus.v1.BrokerTrade": broker_trade, "tradebus.v1.IntentAction": intent_action, "tradebus.v1.StatusEvent": status_event,
    "tradebus.v1.DeadLetter": dead_letter, "tradebus.v1.Alert": alert,
}
