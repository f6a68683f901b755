"""The sim's instrument universe: mostly US equities, a few crypto pairs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from tradebus.protos import pb


@dataclass(frozen=True)
class InstrumentSpec:
    symbol: str
    asset_class: str  # lower-case, as in Subscribe.instrument_class
    venue: str  # Equity.exchange / Crypto.venue
    base_price: Decimal
    tick: Decimal  # price increment
    quantity_step: Decimal  # smallest tradable quantity

    @property
    def key(self) -> str:
        return instrument_key(self.symbol)

    def to_proto(self):
        if self.asset_class == "equity":
            return pb.Instrument(equity=pb.Equity(symbol=self.symbol, exchange=self.venue))
        base, _, quote = self.symbol.partition("-")
        return pb.Instrument(
            crypto=pb.Crypto(
                symbol=self.symbol,
                base=base,
                quote=quote,
                venue=self.venue,
                price_increment=str(self.tick),
                quantity_increment=str(self.quantity_step),
            )
        )


def instrument_key(symbol: str) -> str:
    """Subject-safe key of a symbol in this sim: characters other than letters,
    digits, '_' and '-' become '_' ("BRK.B" -> "BRK_B"). The real platform's
    escaping is not published; this is the sim's own spelling."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", symbol)


def asset_class_of(instrument) -> str:
    """Lower-case class from the Instrument oneof ("" when absent)."""
    which = instrument.WhichOneof("instrument") if instrument is not None else None
    return {"option_instrument": "option"}.get(which, which or "")


_CENT, _ONE = Decimal("0.01"), Decimal(1)
EQUITIES = [
    InstrumentSpec("AAPL", "equity", "XNAS", Decimal("190.00"), _CENT, _ONE),
    InstrumentSpec("MSFT", "equity", "XNAS", Decimal("410.00"), _CENT, _ONE),
    InstrumentSpec("NVDA", "equity", "XNAS", Decimal("120.00"), _CENT, _ONE),
    InstrumentSpec("AMZN", "equity", "XNAS", Decimal("180.00"), _CENT, _ONE),
    InstrumentSpec("META", "equity", "XNAS", Decimal("500.00"), _CENT, _ONE),
    InstrumentSpec("JPM", "equity", "XNYS", Decimal("200.00"), _CENT, _ONE),
    InstrumentSpec("XOM", "equity", "XNYS", Decimal("115.00"), _CENT, _ONE),
    InstrumentSpec("KO", "equity", "XNYS", Decimal("62.00"), _CENT, _ONE),
    InstrumentSpec("BRK.B", "equity", "XNYS", Decimal("420.00"), _CENT, _ONE),
    InstrumentSpec("SPY", "equity", "ARCX", Decimal("520.00"), _CENT, _ONE),
]
CRYPTO = [
    InstrumentSpec("BTC-USD", "crypto", "SIMX", Decimal("60000.00"), _CENT, Decimal("0.0001")),
    InstrumentSpec("ETH-USD", "crypto", "SIMX", Decimal("3000.00"), _CENT, Decimal("0.0001")),
]
UNIVERSE = EQUITIES + CRYPTO
