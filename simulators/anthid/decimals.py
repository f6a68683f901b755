"""Exact decimal arithmetic and the string form used on the wire ("123.4500")."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal

# A local context: results never depend on the process-wide decimal settings.
CONTEXT = Context(prec=34, rounding=ROUND_HALF_EVEN)
PRICE_PLACES = Decimal("0.0001")  # prices, costs and money amounts carry 4 places
ZERO = Decimal(0)


def quantize(value: Decimal, places: Decimal) -> Decimal:
    result = value.quantize(places, context=CONTEXT)
    return abs(result) if result == 0 else result  # never "-0.0000"


def fmt(value: Decimal, places: Decimal) -> str:
    return format(quantize(value, places), "f")


def fmt_price(value: Decimal) -> str:
    return fmt(value, PRICE_PLACES)
