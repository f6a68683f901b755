"""Positions that follow fills, computed exactly with decimal.Decimal.

Average cost is kept at 4 places (what is published), so anyone replaying the
trades with the same rule gets the same strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from simulators.anthid.decimals import CONTEXT, PRICE_PLACES, ZERO, quantize


@dataclass
class Position:
    quantity: Decimal = ZERO  # signed: negative is short
    average_cost: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    value_bought: Decimal = ZERO
    value_sold: Decimal = ZERO


def apply_fill(position: Position, signed_quantity: Decimal, price: Decimal) -> Position:
    """Book one fill (positive = bought, negative = sold) into the position.

    Adding to a position re-averages the cost; reducing it realizes P&L at the
    average cost; crossing through zero starts the new side at the fill price.
    """
    ctx = CONTEXT
    old_qty, old_avg = position.quantity, position.average_cost
    notional = ctx.multiply(abs(signed_quantity), price)
    if signed_quantity > 0:
        position.value_bought += notional
    else:
        position.value_sold += notional
    new_qty = old_qty + signed_quantity
    if old_qty == 0 or (old_qty > 0) == (signed_quantity > 0):
        total_cost = ctx.add(ctx.multiply(abs(old_qty), old_avg), notional)
        position.average_cost = quantize(ctx.divide(total_cost, abs(new_qty)), PRICE_PLACES)
    else:
        closed = min(abs(signed_quantity), abs(old_qty))
        per_unit = price - old_avg if old_qty > 0 else old_avg - price
        position.realized_pnl = quantize(position.realized_pnl + ctx.multiply(closed, per_unit), PRICE_PLACES)
        if new_qty == 0:
            position.average_cost = ZERO
        elif (new_qty > 0) != (old_qty > 0):
            position.average_cost = quantize(price, PRICE_PLACES)  # flipped side
    position.quantity = new_qty
    return position
