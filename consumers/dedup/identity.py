"""What makes two records the same event, per kind (issue 5 §1).

Ingest metadata (producer instance, when tradebus received it, replay flag)
is never part of an identity: the same upstream event received twice, by two
producers or by a backfill and the live stream, is one event.

An identity is a tuple of plain values; :func:`digest` turns it into 16 bytes
with a canonical encoding that does not depend on Python's ``repr`` (the
digests are persisted in the changelog and must survive upgrades).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from tradebus.topics import BROKER_ORDERS, BROKER_POSITIONS, BROKER_TRADES, HTI_IDEAS, INTENT_ACTIONS, Topic

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ONE_MICROSECOND = timedelta(microseconds=1)
SEPARATOR = "\x1f"  # unit separator: never inside ids or decimal strings


class NoIdentityError(ValueError):
    """The record lacks the fields its identity is made of."""


def idea_identity(r: dict[str, Any]) -> tuple:
    return (r["idea_id"], r["last_update_text"])


def order_identity(r: dict[str, Any]) -> tuple:
    return (r["order_id"], r["command_seq"], r["order_status"], r["filled_quantity"], r["received_at"])


def position_identity(r: dict[str, Any]) -> tuple:
    return (r["account_id"], r["symbol"], r["received_at"])


def trade_identity(r: dict[str, Any]) -> tuple:
    # An empty string is protobuf's "not set": treat it as absent.
    if r.get("exec_id"):
        return ("exec", r["exec_id"])
    if r.get("cumulative_quantity"):
        return ("cumulative", r["order_id"], r["cumulative_quantity"])
    raise NoIdentityError("trade has neither exec_id nor cumulative_quantity")


def intent_identity(r: dict[str, Any]) -> tuple:
    return (r["intent_id"], r["seq"])


# Input topic -> (short kind name used in metrics and changelog keys, identity function).
KINDS: dict[str, tuple[str, Callable[[dict], tuple]]] = {
    HTI_IDEAS.name: ("idea", idea_identity),
    BROKER_ORDERS.name: ("order", order_identity),
    BROKER_POSITIONS.name: ("position", position_identity),
    BROKER_TRADES.name: ("trade", trade_identity),
    INTENT_ACTIONS.name: ("intent_action", intent_identity),
}


def kind_of(topic: Topic) -> str:
    return KINDS[topic.name][0]


def _canonical(part: Any) -> str:
    if isinstance(part, datetime):
        return str((part - EPOCH) // ONE_MICROSECOND)  # exact integer microseconds, UTC
    if part is None:
        return "\x00"
    return str(part)


def digest(identity: tuple) -> bytes:
    """16 bytes standing for the identity (BLAKE2b: collisions are not a concern)."""
    text = SEPARATOR.join(_canonical(part) for part in identity)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
