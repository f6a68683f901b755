"""`tradebus verify`: compares a store with simulator ledgers and reports
every event version that is missing from the store, or present there
without having been emitted. Exit 0 only when both lists are empty.

Against the real services there is no ledger: `--hti-history` takes the
fresh history page of the HTI API as the reference for ideas instead.
"""

from __future__ import annotations

import base64
import json
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from tradebus.config import database_url


def register(parser) -> None:
    parser.add_argument("--hti-ledger", help="the HTI simulator's ledger (JSON lines)")
    parser.add_argument("--anthid-ledger", help="the Anthid simulator's ledger (JSON lines)")
    parser.add_argument("--hti-history", action="store_true",
                        help="use a fresh HTI history page (TRADEBUS_HTI_SERVER_URL, TRADEBUS_HTI_API_CODE) as the reference")
    parser.add_argument("--database-url", help="default TRADEBUS_DATABASE_URL")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--show", type=int, default=10, help="how many missing/extra identities to print per kind")
    parser.set_defaults(func=run)


def micros(value) -> str:
    """Normalise a timestamp (ISO text, RFC 3339 with nanoseconds, datetime) to UTC microseconds."""
    if isinstance(value, datetime):
        dt = value
    else:
        text = str(value).replace("Z", "+00:00")
        if "." in text:  # trim nanoseconds to micros before parsing
            head, _, tail = text.partition(".")
            digits = "".join(ch for ch in tail if ch.isdigit())
            zone = tail[len(digits):]
            text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
        dt = datetime.fromisoformat(text)
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")


def read_ledger(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def expected_hti(entries: list[dict]) -> Counter:
    return Counter((e["idea_id"], e["LAST_UPDATE"]) for e in entries if e.get("kind") == "idea")


def expected_anthid(entries: list[dict]) -> dict[str, Counter]:
    """Identities per kind, computed from the protobuf payload the sim sent.
    Replays repeat events already emitted, so only live lines count; faults
    (deliberately unconvertible events) belong in the DLQ, not the store."""
    from tradebus.protos import pb

    out = {"orders": Counter(), "trades": Counter(), "intent_actions": Counter(), "positions": {}}
    for e in entries:
        if e.get("replay") or e.get("fault"):
            continue
        event = pb.TradingEvent.FromString(base64.b64decode(e["payload_b64"]))
        kind = event.WhichOneof("event")
        m = getattr(event, kind)
        if kind == "broker_order":
            out["orders"][(m.order_id, m.command_seq, pb.OrderStatus.Name(m.order_status), m.filled_quantity,
                           micros(m.received_at.ToJsonString()))] += 1
        elif kind == "broker_trade":
            key = f"exec|{m.exec_id}" if m.HasField("exec_id") else f"cumulative|{m.order_id}|{m.cumulative_quantity}"
            out["trades"][key] += 1
        elif kind == "intent_action":
            out["intent_actions"][(m.intent_id, m.seq)] += 1
        elif kind == "broker_position":
            stamp = micros(m.received_at.ToJsonString())
            current = out["positions"].get((m.account_id, m.symbol))
            if current is None or stamp >= current[1]:
                out["positions"][(m.account_id, m.symbol)] = (m.quantity, stamp)
    return out


def stored(store) -> dict:
    q = store.query
    return {
        "ideas": Counter((r["idea_id"], r["last_update_text"]) for r in q("SELECT idea_id, last_update_text FROM idea_versions")),
        "orders": Counter((r["order_id"], r["command_seq"], r["order_status"], r["filled_quantity"], micros(r["received_at"]))
                          for r in q("SELECT order_id, command_seq, order_status, filled_quantity, received_at FROM order_events")),
        "trades": Counter(r["trade_key"] for r in q("SELECT trade_key FROM trades")),
        "intent_actions": Counter((r["intent_id"], r["seq"]) for r in q("SELECT intent_id, seq FROM intent_actions")),
        "positions": {(r["account_id"], r["symbol"]): (r["quantity"], micros(r["received_at"]))
                      for r in q("SELECT account_id, symbol, quantity, received_at FROM positions")},
    }


def compare(expected: Counter, actual: Counter) -> dict:
    missing = sorted(str(k) for k in expected if k not in actual)
    extra = sorted(str(k) for k in actual if k not in expected)
    doubled = sorted(str(k) for k, n in actual.items() if n > 1)
    return {"expected": sum(1 for _ in expected), "stored": len(actual), "missing": missing, "extra": extra, "doubled": doubled}


def hti_history_reference() -> Counter:
    from producers.hti.settings import HtiProducerSettings  # the producer's own client and settings
    from producers.hti.client import HtiClient

    settings = HtiProducerSettings.from_env()
    client = HtiClient(settings)
    page = client.history(50)
    return Counter((i.get("idea_id") or i.get("ID"), i.get("LAST_UPDATE")) for i in page["ideas"])


def main_for(url: str, hti_ledger: str | None, anthid_ledger: str | None) -> int:
    """verify as a function (the demo calls it after its run)."""
    import argparse

    return run(argparse.Namespace(hti_ledger=hti_ledger, anthid_ledger=anthid_ledger, hti_history=False,
                                  database_url=url, json=False, show=5))


def run(args) -> int:
    from consumers.store.db import Store

    url = args.database_url or database_url()
    store = Store.open(url, migrate=False)
    try:
        actual = stored(store)
    finally:
        store.close()
    report = {}
    if args.hti_ledger:
        report["ideas"] = compare(expected_hti(read_ledger(args.hti_ledger)), actual["ideas"])
    elif args.hti_history:
        ref = hti_history_reference()
        result = compare(ref, actual["ideas"])
        result["extra"] = []  # history is a window of 50: older stored ideas are not extra
        report["ideas"] = result
    if args.anthid_ledger:
        exp = expected_anthid(read_ledger(args.anthid_ledger))
        for kind in ("orders", "trades", "intent_actions"):
            report[kind] = compare(exp[kind], actual[kind])
        wrong = sorted(str(k) for k, v in exp["positions"].items() if actual["positions"].get(k, (None,))[0] != v[0])
        report["positions"] = {"expected": len(exp["positions"]), "stored": len(actual["positions"]),
                               "missing": wrong, "extra": [], "doubled": []}
    if not report:
        print("tradebus verify: give --hti-ledger, --anthid-ledger or --hti-history", file=sys.stderr)
        return 2
    ok = all(not (r["missing"] or r["extra"] or r["doubled"]) for r in report.values())
    if args.json:
        print(json.dumps({"ok": ok, "kinds": report}, indent=2))
    else:
        for kind, r in report.items():
            flag = "OK " if not (r["missing"] or r["extra"] or r["doubled"]) else "BAD"
            print(f"{flag} {kind:15} expected {r['expected']:>7}  stored {r['stored']:>7}  "
                  f"missing {len(r['missing']):>5}  extra {len(r['extra']):>5}  doubled {len(r['doubled']):>5}")
            for label in ("missing", "extra", "doubled"):
                for item in r[label][: args.show]:
                    print(f"      {label}: {item}")
    return 0 if ok else 1
