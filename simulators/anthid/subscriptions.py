"""Subscription scopes of one stream and which events they select (spec §4.5)."""

from __future__ import annotations

from dataclasses import dataclass

from simulators.anthid.instruments import asset_class_of, instrument_key
from simulators.anthid.orgs import Organization
from tradebus.protos import pb

# TradingEvent oneof member -> EventType
KIND_OF_MEMBER = {
    "broker_order": pb.EVENT_TYPE_BROKER_ORDER,
    "broker_position": pb.EVENT_TYPE_BROKER_POSITION,
    "broker_trade": pb.EVENT_TYPE_BROKER_TRADE,
    "intent_action": pb.EVENT_TYPE_INTENT_ACTION,
}
KNOWN_KINDS = frozenset(KIND_OF_MEMBER.values())
# The instrument filter narrows these kinds only (not trades or intent actions).
FILTERABLE_KINDS = frozenset({pb.EVENT_TYPE_BROKER_ORDER, pb.EVENT_TYPE_BROKER_POSITION})

ERROR_NO_KINDS = "subscription rejected: no recognised event kinds"
ERROR_UNKNOWN_ACCOUNT = "subscription rejected: trading account not found in organization"


@dataclass(frozen=True)
class Scope:
    account_id: str  # "" = every account of the organization
    kinds: frozenset
    instrument_key: str = ""  # only honoured on a named account
    instrument_class: str = ""
    primed_orders: bool = False  # ORDER_DELIVERY_PRIMED

    def matches(self, event) -> bool:
        member = event.WhichOneof("event")
        kind = KIND_OF_MEMBER.get(member)
        if kind not in self.kinds:
            return False
        payload = getattr(event, member)
        if self.account_id and payload.account_id != self.account_id:
            return False
        if self.account_id and self.instrument_key and kind in FILTERABLE_KINDS:
            if instrument_key(payload.symbol) != self.instrument_key:
                return False
            if self.instrument_class and asset_class_of(payload.instrument) != self.instrument_class:
                return False
        return True


def scope_from_subscribe(subscribe, org: Organization) -> Scope | str:
    """A Scope, or the error text to send back."""
    kinds = frozenset(k for k in subscribe.subscriptions if k in KNOWN_KINDS)
    if not kinds:
        return ERROR_NO_KINDS
    account_id = subscribe.trading_account_id
    if account_id and not org.has_account(account_id):
        return ERROR_UNKNOWN_ACCOUNT
    return Scope(
        account_id=account_id,
        kinds=kinds,
        instrument_key=subscribe.instrument_key if account_id else "",  # ignored org-wide
        instrument_class=subscribe.instrument_class if account_id else "",
        primed_orders=subscribe.order_delivery == pb.ORDER_DELIVERY_PRIMED,
    )


def kind_of(event) -> int | None:
    return KIND_OF_MEMBER.get(event.WhichOneof("event"))
