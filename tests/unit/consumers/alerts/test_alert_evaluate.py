"""Every rule kind's evaluation, with plain dicts from tests/samples.py and an
injected clock (no Kafka)."""

import textwrap
from datetime import datetime, timedelta, timezone

import pytest

from consumers.alerts.evaluate import EvaluationError, Evaluator
from consumers.alerts.rules import parse_rules
from tests import samples
from tradebus.topics import BROKER_ORDERS, BROKER_POSITIONS, BROKER_TRADES, HTI_IDEAS, STATUS, UNIQUE_TOPICS

IDEAS, ORDERS = UNIQUE_TOPICS[HTI_IDEAS.name], UNIQUE_TOPICS[BROKER_ORDERS.name]
TRADES, POSITIONS = UNIQUE_TOPICS[BROKER_TRADES.name], UNIQUE_TOPICS[BROKER_POSITIONS.name]
T0 = datetime(2026, 4, 22, 13, 0, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now


def evaluator(rules_yaml: str, clock=None) -> Evaluator:
    return Evaluator(parse_rules("rules:\n" + textwrap.indent(textwrap.dedent(rules_yaml), "  "), "t.yaml"), clock or Clock())


def idea(**changes):
    record = samples.hti_idea()
    record.update(changes)
    return record


def test_new_idea_filters():
    ev = evaluator("""
        - name: gld-sell
          kind: new_idea
          instruments: [GLD, SPY]
          side: sell
          asset_class: etfs
          timeframe: [M15, H1]
          min_confidence: 0.85
        """)
    [alert] = ev.on_record(IDEAS, idea(), topic_name="p.hti.ideas.unique.v1", key="k")
    assert alert.key == "gld-sell:HTI12_TB_GLD_M15_20260422_090000"
    assert alert.title == "New idea: GLD Sell M15"
    assert (alert.source_topic, alert.source_key, alert.event_time) == ("p.hti.ideas.unique.v1", "k", samples.T0)
    assert alert.details["instrument"] == "GLD" and alert.details["confidence"] == "0.9"
    assert "upstream_json" not in alert.details
    for change in [dict(instrument="QQQ"), dict(side="Buy"), dict(asset_class="FOREX"), dict(timeframe="D1"),
                   dict(confidence=0.8), dict(confidence=None), dict(instrument=None)]:
        assert ev.on_record(IDEAS, idea(**change)) == [], change


def test_new_idea_without_filters_matches_every_idea_and_skips_replays_unless_asked():
    ev = evaluator("""
        - name: all
          kind: new_idea
        - name: all-with-history
          kind: new_idea
          include_replays: true
        """)
    assert [a.rule.name for a in ev.on_record(IDEAS, idea())] == ["all", "all-with-history"]
    replayed = idea(metadata={**samples.metadata(), "replay": True})
    assert [a.rule.name for a in ev.on_record(IDEAS, replayed)] == ["all-with-history"]


def test_tickers_and_names_that_yaml_would_turn_into_booleans_or_numbers_stay_text():
    ev = evaluator("""
        - name: off
          kind: new_idea
          instruments: [ON, 1299]
        """)
    assert ev.rules[0].name == "off"
    assert len(ev.on_record(IDEAS, idea(instrument="ON"))) == 1
    assert len(ev.on_record(IDEAS, idea(instrument="1299"))) == 1


def order(status, **changes):
    record = samples.broker_order()
    record.update(order_status=status, **changes)
    return record


def test_order_rejected_or_cancelled():
    ev = evaluator("""
        - name: bad-orders
          kind: order_rejected_or_cancelled
        - name: only-a2-rejected
          kind: order_rejected_or_cancelled
          statuses: REJECTED
          account: a-2
        """)
    [rejected] = ev.on_record(ORDERS, order("ORDER_STATUS_REJECTED"))
    assert rejected.key == "bad-orders:o-1:ORDER_STATUS_REJECTED"
    assert rejected.title == "Order REJECTED: AAPL ORDER_SIDE_BUY 100"
    assert "is ORDER_STATUS_REJECTED" in rejected.message
    assert [a.rule.name for a in ev.on_record(ORDERS, order("ORDER_STATUS_CANCELLED"))] == ["bad-orders"]
    assert [a.rule.name for a in ev.on_record(ORDERS, order("ORDER_STATUS_REJECTED", account_id="a-2"))] == \
        ["bad-orders", "only-a2-rejected"]
    for status in ["ORDER_STATUS_FILLED", "ORDER_STATUS_PENDING_CANCEL", "ORDER_STATUS_NEW"]:
        assert ev.on_record(ORDERS, order(status)) == []


def trade(quantity, price, **changes):
    record = samples.broker_trade()
    record.update(quantity=quantity, price=price, **changes)
    return record


def test_large_fill_uses_exact_decimals():
    ev = evaluator("""
        - name: big
          kind: large_fill
          min_notional: 0.3
          symbols: [AAPL]
        """)
    # 0.1 x 3 is 0.30000000000000004 in binary floats: a float rule would fire.
    assert ev.on_record(TRADES, trade("0.1", "3")) == []
    [alert] = ev.on_record(TRADES, trade("0.1", "3.0000001"))
    assert alert.details["notional"] == "0.30000001" and alert.key == "big:a-1:b-1:e-1"
    assert ev.on_record(TRADES, trade("10", "10", symbol="MSFT")) == []
    with pytest.raises(EvaluationError, match="quantity"):
        ev.on_record(TRADES, trade("12..5", "3"))


def position(quantity, **changes):
    record = samples.broker_position()
    record.update(quantity=quantity, metadata={**record["metadata"], "replay": False}, **changes)
    return record


def test_position_change_against_the_previous_quantity():
    ev = evaluator("""
        - name: swing
          kind: position_change
          min_change: 100
        """)
    assert ev.on_record(POSITIONS, position("40")) == []  # first sight: baseline only
    assert ev.on_record(POSITIONS, position("140")) == []  # exactly 100 is not beyond
    [alert] = ev.on_record(POSITIONS, position("0"))
    assert (alert.details["previous_quantity"], alert.details["change"]) == ("140", "-140")
    assert alert.title == "Position change: a-1 AAPL 140 -> 0"
    assert ev.on_record(POSITIONS, position("500", symbol="MSFT")) == []  # another position's baseline
    [alert] = ev.on_record(POSITIONS, position("600.5", symbol="MSFT"))
    assert alert.details["change"] == "+100.5"


def test_position_replays_set_the_baseline_without_alerting():
    ev = evaluator("""
        - name: swing
          kind: position_change
          min_change: 10
          alert_on_first: true
        """)
    primed = samples.broker_position()  # replay=True
    primed["quantity"] = "1000"
    assert ev.on_record(POSITIONS, primed) == []
    assert ev.on_record(POSITIONS, position("1005")) == []
    [alert] = ev.on_record(POSITIONS, position("1100"))
    assert alert.details["previous_quantity"] == "1005"
    # alert_on_first: a new position counts from zero
    [first] = ev.on_record(POSITIONS, position("50", account_id="a-9"))
    assert first.details["previous_quantity"] == "0"


def status(kind="heartbeat", source="anthid", instance="p-1", at=T0, **changes):
    record = samples.status_event()
    record.update(kind=kind, source=source, producer_instance=instance, emitted_at=at, **changes)
    return record


def test_producer_silent_fires_on_the_timer_once_per_silence():
    clock = Clock()
    ev = evaluator("""
        - name: silent
          kind: producer_silent
          silent_seconds: 30
        """, clock)
    assert ev.on_record(STATUS, status(at=T0), partition=0) == []
    ev.on_record(STATUS, status(instance="p-2", at=T0 + timedelta(seconds=20)), partition=1)
    clock.now = T0 + timedelta(seconds=30)
    assert ev.on_timer() == []  # exactly the limit is not longer than it
    clock.now = T0 + timedelta(seconds=31)
    [alert] = ev.on_timer()
    assert alert.key == "silent:anthid/p-1" and alert.details["silent_for"] == "31"
    assert alert.event_time == T0 and alert.source_topic is None
    assert ev.on_timer() == []  # once per silence
    clock.now = T0 + timedelta(seconds=51)
    assert [a.key for a in ev.on_timer()] == ["silent:anthid/p-2"]
    # p-1 speaks again, then falls silent again: a new silence, a new alert
    ev.on_record(STATUS, status(at=T0 + timedelta(seconds=60)), partition=0)
    clock.now = T0 + timedelta(seconds=85)
    assert ev.on_timer() == []
    clock.now = T0 + timedelta(seconds=91)
    assert [a.key for a in ev.on_timer()] == ["silent:anthid/p-1"]


def test_producer_silent_measures_from_start_when_catching_up_old_heartbeats():
    clock = Clock(T0 + timedelta(hours=5))  # worker starts hours after the last heartbeat it will read
    ev = evaluator("""
        - name: silent
          kind: producer_silent
          silent_seconds: 30
        """, clock)
    ev.on_record(STATUS, status(at=T0))
    assert ev.on_timer() == []
    clock.now += timedelta(seconds=31)
    [alert] = ev.on_timer()
    assert alert.details["silent_for"] == str(5 * 3600 + 31)


def test_producer_silent_per_source_kinds_filter_stop_and_revoke():
    clock = Clock()
    ev = evaluator("""
        - name: per-source
          kind: producer_silent
          silent_seconds: 10
          per: source
          sources: [hti]
          kinds: [heartbeat]
        - name: per-instance
          kind: producer_silent
          silent_seconds: 10
        """, clock)
    ev.on_record(STATUS, status(source="hti", instance="a", at=T0), partition=0)
    ev.on_record(STATUS, status(source="hti", instance="b", at=T0 + timedelta(seconds=5)), partition=1)
    ev.on_record(STATUS, status("error", source="hti", instance="b", at=T0 + timedelta(seconds=9)), partition=1)
    ev.on_record(STATUS, status(source="anthid", instance="c", at=T0), partition=2)
    ev.on_record(STATUS, status("stopped", source="anthid", instance="c", at=T0 + timedelta(seconds=1)), partition=2)
    ev.forget_partitions(STATUS, {0})  # instance a's partition went to another worker
    clock.now = T0 + timedelta(seconds=16)
    keys = sorted(a.key for a in ev.on_timer())
    # per source: last heartbeat of any hti instance at +5 (the error kind does not count);
    # per instance: b's last event at +9 is not 10 s old; c stopped cleanly; a was revoked.
    assert keys == ["per-source:hti/*"]
    clock.now = T0 + timedelta(seconds=20)
    assert sorted(a.key for a in ev.on_timer()) == ["per-instance:hti/b"]


def test_gap_reported():
    ev = evaluator("""
        - name: gaps
          kind: gap_reported
          cooldown_seconds: 0
        - name: hti-idea-gaps
          kind: gap_reported
          source: hti
          event_type: ideas
          title: "{source} gap ({message})"
        """)
    assert ev.on_record(STATUS, status("heartbeat")) == []
    [alert] = ev.on_record(STATUS, status("gap", event_type="EVENT_TYPE_BROKER_ORDER", message="seq 4 -> 9"), key="anthid/p-1")
    assert alert.key == "gaps:anthid/p-1:EVENT_TYPE_BROKER_ORDER"
    assert alert.message == "anthid/p-1 reported a possible gap in EVENT_TYPE_BROKER_ORDER: seq 4 -> 9"
    alerts = ev.on_record(STATUS, status("gap", source="hti", event_type="ideas", message="history overflow"))
    assert [(a.rule.name, a.title) for a in alerts] == [("gaps", "Gap reported by hti/p-1 (ideas)"),
                                                        ("hti-idea-gaps", "hti gap (history overflow)")]
    assert [a.rule.name for a in ev.on_record(STATUS, status("gap", source="hti", event_type="orders"))] == ["gaps"]


def test_input_topics_are_only_what_the_rules_read():
    assert evaluator("- name: a\n  kind: large_fill\n  min_notional: 1\n").input_topics() == [TRADES]
    ev = evaluator("- name: a\n  kind: gap_reported\n- name: b\n  kind: producer_silent\n  silent_seconds: 1\n")
    assert ev.input_topics() == [STATUS]
    assert ev.on_record(TRADES, trade("1", "1")) == []


def test_template_format_specs_and_missing_values():
    ev = evaluator("""
        - name: pct
          kind: new_idea
          title: "{instrument} {confidence:.0%} {take_profit:.2f}"
        """)
    assert ev.on_record(IDEAS, idea())[0].title == "GLD 90% 432.93"
    # a None value renders as "-" even where the spec expects a number
    assert ev.on_record(IDEAS, idea(confidence=None))[0].title == "GLD - 432.93"
