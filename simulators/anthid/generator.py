"""Order lifecycles of one organization, as Anthid would stream them.

Each lifecycle: IntentAction CREATE (seq 1) -> BrokerOrder PENDING_NEW -> NEW
(or REJECTED), sometimes a REPLACE (seq 2: PENDING_REPLACE -> REPLACED), then
fills (PARTIALLY_FILLED* -> FILLED, each with a BrokerTrade and a
BrokerPosition), or a CANCEL after zero or more partial fills (PENDING_CANCEL ->
CANCELLED). `command_seq` on a BrokerOrder is the seq of the intent action the
broker is answering.

Everything is drawn from one `random.Random` seeded with (seed, organization),
so a seed reproduces the same events. Timestamps are NOT set here: the hub
stamps `received_at` (and `created_at`/`broker_sent_at`) at emit time.
"""

from __future__ import annotations

import random
import uuid
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterator

from simulators.anthid.book import Position, apply_fill
from simulators.anthid.decimals import CONTEXT, ZERO, fmt, fmt_price, quantize
from simulators.anthid.instruments import CRYPTO, EQUITIES, InstrumentSpec
from simulators.anthid.orgs import Organization
from tradebus.protos import pb

TERMINAL_STATUSES = frozenset(
    {pb.ORDER_STATUS_FILLED, pb.ORDER_STATUS_CANCELLED, pb.ORDER_STATUS_REJECTED, pb.ORDER_STATUS_STOPPED}
)

# Fault kinds of the unconvertible events (see OrgEventGenerator).
FAULT_INVALID_DECIMAL = "invalid_decimal"
FAULT_MISSING_INSTRUMENT = "missing_instrument"
INVALID_DECIMAL = "12..5"


def order_state_for(status: int) -> int:
    """Coarse OrderState that goes with an OrderStatus."""
    if status == pb.ORDER_STATUS_REJECTED:
        return pb.ORDER_STATE_REJECTED
    if status in TERMINAL_STATUSES:
        return pb.ORDER_STATE_CLOSED
    return pb.ORDER_STATE_OPEN


@dataclass
class GeneratedEvent:
    event: object  # pb.TradingEvent with one data member set
    fault: str | None = None  # set on events a producer must not be able to convert


@dataclass
class _Order:
    org_id: str
    account_id: str
    broker: int
    spec: InstrumentSpec
    order_id: str
    intent_id: str
    side: int
    order_type: int
    venue: int
    time_in_force: int
    quantity: Decimal
    limit_price: Decimal | None
    client_reference_id: str | None
    seq: int = 1
    status: int = pb.ORDER_STATUS_PENDING_NEW
    external_order_id: str | None = None
    filled: Decimal = ZERO
    filled_notional: Decimal = ZERO
    fills: int = field(default=0)


class OrgEventGenerator:
    """Endless, reproducible event source for one organization's accounts.

    `unconvertible_every=N` makes every Nth event a BrokerOrder the producer
    cannot convert, alternating: quantity "12..5" (invalid decimal), then one
    without the mandatory instrument. They are extra orders of their own (fresh
    ids, never retained), so the regular lifecycles stay complete.
    """

    def __init__(self, org: Organization, seed: int | str = 0, *, unconvertible_every: int = 0,
                 max_active_per_account: int = 3, crypto_share: float = 0.1):
        if not org.account_ids:
            raise ValueError(f"organization {org.name} has no accounts")
        self.org = org
        self.rng = random.Random(f"{seed}/{org.id}")
        self.unconvertible_every = unconvertible_every
        self.max_active = max_active_per_account * len(org.account_ids)
        self.crypto_share = crypto_share
        self.positions: dict[tuple[str, str], Position] = {}
        self._prices = {spec.symbol: spec.base_price for spec in EQUITIES + CRYPTO}
        self._brokers = {a: (pb.BROKER_ALPACA if i % 2 == 0 else pb.BROKER_LIGHTSPEED_CONNECT)
                         for i, a in enumerate(org.account_ids)}
        self._active: list[Iterator[list]] = []
        self._pending: deque = deque()
        self._count = 0
        self._faults = 0

    # -- public ---------------------------------------------------------------

    def next_event(self) -> GeneratedEvent:
        self._count += 1
        if self.unconvertible_every and self._count % self.unconvertible_every == 0:
            return self._unconvertible()
        while not self._pending:
            self._step()
        return GeneratedEvent(self._pending.popleft())

    def take(self, n: int) -> list[GeneratedEvent]:
        return [self.next_event() for _ in range(n)]

    # -- scheduling -----------------------------------------------------------

    def _step(self) -> None:
        rng = self.rng
        if not self._active or (len(self._active) < self.max_active and rng.random() < 0.3):
            self._active.append(self._lifecycle(rng.choice(self.org.account_ids)))
        index = rng.randrange(len(self._active))
        try:
            self._pending.extend(next(self._active[index]))
        except StopIteration:
            del self._active[index]

    # -- helpers --------------------------------------------------------------

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _pick_instrument(self) -> InstrumentSpec:
        pool = CRYPTO if self.rng.random() < self.crypto_share else EQUITIES
        return self.rng.choice(pool)

    def _market_price(self, spec: InstrumentSpec) -> Decimal:
        """A random walk per symbol, on the tick grid."""
        drift = Decimal(self.rng.randint(-30, 30)) / Decimal(10000)  # +-0.30 %
        price = quantize(CONTEXT.multiply(self._prices[spec.symbol], 1 + drift), spec.tick)
        price = max(price, spec.tick)
        self._prices[spec.symbol] = price
        return price

    def _quantity(self, spec: InstrumentSpec) -> Decimal:
        if spec.asset_class == "equity":
            return Decimal(self.rng.randint(1, 50) * 10)
        return Decimal(self.rng.randint(10, 5000)) * spec.quantity_step

    def _split(self, total: Decimal, parts: int, step: Decimal) -> list[Decimal]:
        """`parts` positive multiples of `step` that add up to `total` exactly."""
        units = int(total / step)
        parts = max(1, min(parts, units))
        cuts = sorted(self.rng.sample(range(1, units), parts - 1)) if parts > 1 else []
        bounds = [0, *cuts, units]
        return [Decimal(bounds[i + 1] - bounds[i]) * step for i in range(parts)]

    # -- lifecycle ------------------------------------------------------------

    def _lifecycle(self, account_id: str) -> Iterator[list]:
        rng = self.rng
        spec = self._pick_instrument()
        side = rng.choices([pb.ORDER_SIDE_BUY, pb.ORDER_SIDE_SELL, pb.ORDER_SIDE_SELL_SHORT], [55, 35, 10])[0]
        order_type = pb.ORDER_TYPE_LIMIT if rng.random() < 0.7 else pb.ORDER_TYPE_MARKET
        reference = self._market_price(spec)
        limit = None
        if order_type == pb.ORDER_TYPE_LIMIT:
            limit = reference + spec.tick * rng.randint(-5, 5)
            limit = max(limit, spec.tick)
        quantity = self._quantity(spec)
        held = self.positions.get((account_id, spec.symbol))
        if held is not None and held.quantity != 0 and rng.random() < 0.25:
            # a closing order, so positions go flat now and then (and expire from retention)
            side = pb.ORDER_SIDE_SELL if held.quantity > 0 else pb.ORDER_SIDE_BUY
            quantity = abs(held.quantity)
        order = _Order(
            org_id=self.org.id,
            account_id=account_id,
            broker=self._brokers[account_id],
            spec=spec,
            order_id=self._uuid(),
            intent_id=self._uuid(),
            side=side,
            order_type=order_type,
            venue=pb.ORDER_VENUE_SMART if rng.random() < 0.7 else rng.choice(
                [pb.ORDER_VENUE_NSDQ, pb.ORDER_VENUE_NYSE, pb.ORDER_VENUE_ARCA, pb.ORDER_VENUE_EDGX]),
            time_in_force=pb.TIME_IN_FORCE_DAY if rng.random() < 0.8 else pb.TIME_IN_FORCE_GOOD_TILL_CANCEL,
            quantity=quantity,
            limit_price=limit,
            client_reference_id=f"sim-{rng.getrandbits(32):08x}" if rng.random() < 0.5 else None,
        )
        yield [self._intent(order, pb.INTENT_ACTION_TYPE_CREATE)]
        yield [self._order_event(order, pb.ORDER_STATUS_PENDING_NEW)]
        if rng.random() < 0.07:
            yield [self._order_event(order, pb.ORDER_STATUS_REJECTED)]
            return
        order.external_order_id = f"BRK-{rng.getrandbits(40):010x}"
        yield [self._order_event(order, pb.ORDER_STATUS_NEW)]

        if rng.random() < 0.15:  # replace: new size (and price) before any fill
            order.seq += 1
            order.quantity = self._quantity(spec)
            if order.limit_price is not None:
                order.limit_price = max(order.limit_price + spec.tick * rng.randint(-3, 3), spec.tick)
            yield [self._intent(order, pb.INTENT_ACTION_TYPE_REPLACE)]
            yield [self._order_event(order, pb.ORDER_STATUS_PENDING_REPLACE)]
            yield [self._order_event(order, pb.ORDER_STATUS_REPLACED)]

        cancel = rng.random() < 0.2
        pieces = self._split(order.quantity, rng.randint(1, 4), spec.quantity_step)
        if cancel:
            pieces = pieces[: rng.randint(0, len(pieces) - 1)]  # never the last piece
        for piece in pieces:
            yield self._fill(order, piece)
        if cancel:
            order.seq += 1
            yield [self._intent(order, pb.INTENT_ACTION_TYPE_CANCEL)]
            yield [self._order_event(order, pb.ORDER_STATUS_PENDING_CANCEL)]
            yield [self._order_event(order, pb.ORDER_STATUS_CANCELLED)]

    def _fill(self, order: _Order, piece: Decimal) -> list:
        spec = order.spec
        price = self._market_price(spec)
        if order.limit_price is not None:  # respect the limit
            price = min(price, order.limit_price) if order.side == pb.ORDER_SIDE_BUY else max(price, order.limit_price)
        order.filled += piece
        order.filled_notional += CONTEXT.multiply(piece, price)
        order.fills += 1
        status = pb.ORDER_STATUS_FILLED if order.filled == order.quantity else pb.ORDER_STATUS_PARTIALLY_FILLED
        trade = pb.BrokerTrade(
            account_id=order.account_id,
            order_id=order.external_order_id or "",  # the broker's id
            client_order_id=order.order_id,  # the platform's id
            symbol=spec.symbol,
            side=order.side,
            quantity=fmt(piece, spec.quantity_step),
            price=fmt_price(price),
            organization_id=order.org_id,
            exec_id=f"EX-{self.rng.getrandbits(48):012x}",
            cumulative_quantity=fmt(order.filled, spec.quantity_step),
            order_quantity=fmt(order.quantity, spec.quantity_step),
            leaves_quantity=fmt(order.quantity - order.filled, spec.quantity_step),
            instrument=spec.to_proto(),
        )
        signed = piece if order.side == pb.ORDER_SIDE_BUY else -piece
        position = self.positions.setdefault((order.account_id, spec.symbol), Position())
        apply_fill(position, signed, price)
        return [self._order_event(order, status), pb.TradingEvent(broker_trade=trade),
                self._position_event(order, position)]

    # -- message builders -----------------------------------------------------

    def _intent(self, order: _Order, action_type: int):
        action = pb.IntentAction(
            intent_id=order.intent_id,
            organization_id=order.org_id,
            account_id=order.account_id,
            seq=order.seq,
            action_type=action_type,
            symbol=order.spec.symbol,
            order_side=order.side,
            order_type=order.order_type,
            order_venue=order.venue,
            time_in_force=order.time_in_force,
            quantity=fmt(order.quantity, order.spec.quantity_step),
            principal_type=pb.INTENT_PRINCIPAL_TYPE_API_KEY,
        )
        if order.limit_price is not None:
            action.limit_price = fmt_price(order.limit_price)
        if order.client_reference_id:
            action.client_reference_id = order.client_reference_id
        return pb.TradingEvent(intent_action=action)

    def _order_event(self, order: _Order, status: int):
        order.status = status
        message = pb.BrokerOrder(
            order_id=order.order_id,
            intent_id=order.intent_id,
            command_seq=order.seq,
            account_id=order.account_id,
            broker=order.broker,
            symbol=order.spec.symbol,
            order_state=order_state_for(status),
            order_status=status,
            order_type=order.order_type,
            order_side=order.side,
            order_venue=order.venue,
            quantity=fmt(order.quantity, order.spec.quantity_step),
            filled_quantity=fmt(order.filled, order.spec.quantity_step),
            time_in_force=order.time_in_force,
            organization_id=order.org_id,
            instrument=order.spec.to_proto(),
        )
        if order.external_order_id:
            message.external_order_id = order.external_order_id
        if order.limit_price is not None:
            message.limit_price = fmt_price(order.limit_price)
        if order.filled > 0:
            message.average_price = fmt_price(CONTEXT.divide(order.filled_notional, order.filled))
        if order.client_reference_id:
            message.client_reference_id = order.client_reference_id
        return pb.TradingEvent(broker_order=message)

    def _position_event(self, order: _Order, position: Position):
        spec = order.spec
        message = pb.BrokerPosition(
            account_id=order.account_id,
            symbol=spec.symbol,
            quantity=fmt(position.quantity, spec.quantity_step),
            average_cost=fmt_price(position.average_cost),
            organization_id=order.org_id,
            broker=order.broker,
            instrument=spec.to_proto(),
            realized_pnl=fmt_price(position.realized_pnl),
            value_bought=fmt_price(position.value_bought),
            value_sold=fmt_price(position.value_sold),
        )  # daily_pnl stays absent: unknown to the sim (absent never means zero)
        return pb.TradingEvent(broker_position=message)

    def _unconvertible(self) -> GeneratedEvent:
        self._faults += 1
        spec = EQUITIES[0]
        account_id = self.rng.choice(self.org.account_ids)
        order = pb.BrokerOrder(
            order_id=self._uuid(),
            intent_id=self._uuid(),
            command_seq=1,
            account_id=account_id,
            broker=self._brokers[account_id],
            symbol=spec.symbol,
            order_state=pb.ORDER_STATE_OPEN,
            order_status=pb.ORDER_STATUS_NEW,
            order_type=pb.ORDER_TYPE_MARKET,
            order_side=pb.ORDER_SIDE_BUY,
            order_venue=pb.ORDER_VENUE_SMART,
            quantity="10",
            filled_quantity="0",
            time_in_force=pb.TIME_IN_FORCE_DAY,
            organization_id=self.org.id,
        )
        if self._faults % 2 == 1:
            order.quantity = INVALID_DECIMAL
            order.instrument.CopyFrom(spec.to_proto())
            fault = FAULT_INVALID_DECIMAL
        else:
            fault = FAULT_MISSING_INSTRUMENT  # field 23 left unset
        return GeneratedEvent(pb.TradingEvent(broker_order=order), fault=fault)
