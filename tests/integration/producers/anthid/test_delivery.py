"""Every event kind lands on its topic decoded and exact, and the topics
match the simulator's ledger one for one (replays included); unconvertible
events go to the DLQ with their bytes and the reason while the flow goes on;
account scopes share one connection."""

from __future__ import annotations

from collections import Counter

from producers.anthid.convert import DATA_KINDS
from producers.anthid.values import to_datetime
from tests.integration.producers.anthid.conftest import ledger_data, producer_settings, quiesce, wait_until
from tradebus.protos import pb
from tradebus.topics import DLQ, STATUS

DECIMALS = {
    "broker_order": ["quantity", "filled_quantity", "limit_price", "stop_price", "average_price"],
    "broker_position": ["quantity", "average_cost", "realized_pnl", "daily_pnl", "value_bought", "value_sold"],
    "broker_trade": ["quantity", "price", "cumulative_quantity", "order_quantity", "leaves_quantity"],
    "intent_action": ["quantity", "limit_price", "stop_price"],
}
MESSAGE = {"broker_order": pb.BrokerOrder, "broker_position": pb.BrokerPosition, "broker_trade": pb.BrokerTrade,
           "intent_action": pb.IntentAction}


def test_every_kind_lands_exact_and_matches_the_ledger(start_sim, start_producer, common, reader):
    sim = start_sim(prefill_events=60, rate=40.0)  # prefill: retained orders and positions to replay on attach
    producer = start_producer(producer_settings(sim.target), common)
    wait_until(lambda: sum(1 for e in ledger_data(sim) if e["kind"] == "broker_trade") >= 5, timeout=30,
               message="trades in the ledger")
    quiesce(sim)
    assert producer.stop() == 0

    ledger = [e for e in ledger_data(sim) if e["fault"] is None]
    assert {e["kind"] for e in ledger} == set(DATA_KINDS)
    assert any(e["replay"] for e in ledger), "prefilled state should have been replayed"
    for name, kind in DATA_KINDS.items():
        records = reader.values(kind.topic)
        got = Counter((r["upstream_protobuf"], r["metadata"]["replay"]) for r in records)
        expected = Counter((e["member_bytes"], e["replay"]) for e in ledger if e["kind"] == name)
        assert got == expected, f"{name}: topic and ledger differ"
        for key, record in reader.read(kind.topic):
            member = MESSAGE[name].FromString(record["upstream_protobuf"])
            assert key.decode() == kind.key(record)
            assert record["metadata"]["source"] == "anthid" and record["metadata"]["upstream_event"] == name
            for field in DECIMALS[name]:
                expected_value = getattr(member, field) if (not member.DESCRIPTOR.fields_by_name[field].has_presence
                                                            or member.HasField(field)) else None
                assert record[field] == expected_value  # the exact string, byte for byte
            assert record["received_at"] == to_datetime(member.received_at)
            if name == "broker_order":
                assert record["order_status"] == pb.OrderStatus.Name(member.order_status)
                assert record["instrument"]["kind"] == member.instrument.WhichOneof("instrument")

    statuses = reader.values(STATUS)
    kinds = Counter(s["kind"] for s in statuses)
    assert kinds["started"] == 1 and kinds["connected"] == 1 and kinds["stopped"] == 1 and kinds["status"] >= 1
    primed = {s["event_type"] for s in statuses if s["kind"] == "primed"}
    assert primed == {"EVENT_TYPE_BROKER_POSITION", "EVENT_TYPE_BROKER_ORDER"}
    assert kinds["heartbeat"] >= 1
    assert reader.values(DLQ) == []


def test_unconvertible_events_go_to_the_dlq_and_the_flow_goes_on(start_sim, start_producer, common, reader):
    sim = start_sim(unconvertible_every=7, rate=60.0)
    producer = start_producer(producer_settings(sim.target), common)
    wait_until(lambda: sum(1 for e in ledger_data(sim) if e["fault"]) >= 4, timeout=30, message="faulty events")
    quiesce(sim)
    assert producer.stop() == 0

    ledger = ledger_data(sim)
    faulty = [e for e in ledger if e["fault"]]
    dead = reader.values(DLQ)
    assert sorted(d["payload"] for d in dead) == sorted(e["event_bytes"] for e in faulty)
    for letter in dead:
        assert letter["source"] == "anthid" and letter["stage"] == "convert" and letter["payload_encoding"] == "protobuf"
        assert letter["details"]["reason_code"] in {"invalid_decimal", "missing_instrument"}
        assert letter["upstream_event"] == "broker_order" and letter["target_topic"].endswith("anthid.broker-orders.v1")
        assert pb.TradingEvent.FromString(letter["payload"]).WhichOneof("event") == "broker_order"
    assert {d["details"]["reason_code"] for d in dead} == {"invalid_decimal", "missing_instrument"}
    # events after each faulty one still landed
    last_fault = max(i for i, e in enumerate(ledger) if e["fault"])
    later = [e for e in ledger[last_fault + 1:] if e["kind"] == "broker_trade"]
    trades = {r["upstream_protobuf"] for r in reader.values(DATA_KINDS["broker_trade"].topic)}
    assert all(e["member_bytes"] in trades for e in later)
    good_orders = sum(1 for e in ledger if e["kind"] == "broker_order" and not e["fault"])
    assert len(reader.values(DATA_KINDS["broker_order"].topic)) == good_orders


def test_account_scopes_share_one_connection(start_sim, start_producer, common, reader):
    sim = start_sim(rate=40.0)
    org = sim.organizations[0]
    accounts = ",".join(org.account_ids)
    producer = start_producer(producer_settings(sim.target, TRADEBUS_ANTHID_ACCOUNTS=accounts,
                                                TRADEBUS_ANTHID_EVENT_KINDS="BROKER_TRADE,BROKER_POSITION"), common)
    wait_until(lambda: sim.connections(org.id) == 1, message="one connection")
    wait_until(lambda: {e["account_id"] for e in ledger_data(sim) if e["kind"] == "broker_trade"} == set(org.account_ids),
               timeout=30, message="trades of both accounts")
    assert sim.connections(org.id) == 1
    quiesce(sim)
    assert producer.stop() == 0
    trades = reader.values(DATA_KINDS["broker_trade"].topic)
    assert {t["account_id"] for t in trades} == set(org.account_ids)
    assert reader.values(DATA_KINDS["broker_order"].topic) == []  # not subscribed
    statuses = reader.values(STATUS)
    assert sum(1 for s in statuses if s["kind"] == "status" and s["message"] == "subscribed") == len(org.account_ids)
    assert sum(1 for s in statuses if s["kind"] == "primed") == len(org.account_ids)  # one per scope


def test_max_connections_spreads_accounts(start_sim, start_producer, common, topics):
    sim = start_sim(rate=5.0)
    org = sim.organizations[0]
    producer = start_producer(producer_settings(sim.target, TRADEBUS_ANTHID_ACCOUNTS=",".join(org.account_ids),
                                                TRADEBUS_ANTHID_MAX_CONNECTIONS="5"), common)
    wait_until(lambda: sim.connections(org.id) == len(org.account_ids), message="a connection per account")
    assert producer.stop() == 0
