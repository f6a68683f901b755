"""Append-only JSON-lines record of the data events the sim wrote to streams.

One line per generated event, written when it is first handed to any stream
(`replay: false`), plus one line per replayed retained event per stream
(`replay: true`). Each line carries the identity fields a store can be checked
against, `emitted_at`, and `payload_b64`: the serialized TradingEvent envelope.
Lines are flushed one by one, so a killed sim leaves a readable ledger.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp

from tradebus.protos import pb


def rfc3339_ns(ns: int) -> str:
    stamp = Timestamp()
    stamp.FromNanoseconds(ns)
    return stamp.ToJsonString()


def identity(event) -> dict:
    """The fields that identify one data event downstream."""
    member = event.WhichOneof("event")
    m = getattr(event, member)
    received_at = m.received_at.ToJsonString() if m.HasField("received_at") else None
    if member == "broker_order":
        return {"order_id": m.order_id, "intent_id": m.intent_id, "command_seq": m.command_seq,
                "status": pb.OrderStatus.Name(m.order_status), "filled": m.filled_quantity,
                "account_id": m.account_id, "received_at": received_at}
    if member == "broker_trade":
        return {"exec_id": m.exec_id if m.HasField("exec_id") else None, "order_id": m.order_id,
                "client_order_id": m.client_order_id, "account_id": m.account_id, "quantity": m.quantity,
                "received_at": received_at}
    if member == "broker_position":
        return {"account_id": m.account_id, "symbol": m.symbol, "quantity": m.quantity,
                "received_at": received_at}
    if member == "intent_action":
        return {"intent_id": m.intent_id, "seq": m.seq, "action_type": pb.IntentActionType.Name(m.action_type),
                "account_id": m.account_id, "received_at": received_at}
    return {}


class Ledger:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def record(self, emission, *, stream_id: int, replay: bool = False) -> None:
        """Write one line; a live emission is written only on its first call."""
        now_ns = time.time_ns()
        with self._lock:
            if not replay:
                if emission.recorded:
                    return
                emission.recorded = True
            if self._file.closed:
                return
            line = {
                "emitted_at": rfc3339_ns(now_ns),
                "org": emission.org_id,
                "kind": emission.event.WhichOneof("event"),
                "replay": replay,
                "stream": stream_id,
                **identity(emission.event),
                "fault": emission.fault,
                "payload_b64": base64.b64encode(emission.payload).decode("ascii"),
            }
            self._file.write(json.dumps(line, separators=(",", ":")) + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


class NullLedger:
    """Used when no --ledger is given."""

    path = None

    def record(self, emission, *, stream_id: int, replay: bool = False) -> None:
        emission.recorded = True

    def close(self) -> None:
        pass


def read_ledger(path: str | Path) -> list[dict]:
    """All lines of a ledger (for tests and the verify tool)."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
