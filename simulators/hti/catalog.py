"""What simulated ideas are made of: instruments by asset class with
plausible price levels, timeframes, feed prefixes and description phrases.

The values follow the docs' examples (US EQUITIES / ETFS / FOREX, M5 / M15 /
H1, HTI11 / HTI12); the lists are "such as" examples there (spec O13).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Instrument:
    symbol: str
    asset_class: str
    base_price: float
    decimals: int  # digits the levels are rounded to
    move_pct: tuple[float, float]  # take-profit distance range, % of price


_EQUITY_MOVE = (0.25, 1.6)
_FX_MOVE = (0.08, 0.6)

INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument("AMD", "US EQUITIES", 289.38, 5, _EQUITY_MOVE),
    Instrument("AAPL", "US EQUITIES", 231.50, 5, _EQUITY_MOVE),
    Instrument("MSFT", "US EQUITIES", 428.10, 5, _EQUITY_MOVE),
    Instrument("NVDA", "US EQUITIES", 131.20, 5, _EQUITY_MOVE),
    Instrument("AMZN", "US EQUITIES", 186.40, 5, _EQUITY_MOVE),
    Instrument("GOOGL", "US EQUITIES", 171.30, 5, _EQUITY_MOVE),
    Instrument("META", "US EQUITIES", 562.80, 5, _EQUITY_MOVE),
    Instrument("TSLA", "US EQUITIES", 248.90, 5, _EQUITY_MOVE),
    Instrument("GLD", "ETFS", 437.97, 4, _EQUITY_MOVE),
    Instrument("SPY", "ETFS", 563.40, 4, _EQUITY_MOVE),
    Instrument("QQQ", "ETFS", 481.20, 4, _EQUITY_MOVE),
    Instrument("IWM", "ETFS", 211.70, 4, _EQUITY_MOVE),
    Instrument("TLT", "ETFS", 92.35, 4, _EQUITY_MOVE),
    Instrument("XLE", "ETFS", 89.60, 4, _EQUITY_MOVE),
    Instrument("EURUSD", "FOREX", 1.08520, 5, _FX_MOVE),
    Instrument("GBPUSD", "FOREX", 1.27140, 5, _FX_MOVE),
    Instrument("USDJPY", "FOREX", 151.320, 3, _FX_MOVE),
    Instrument("AUDUSD", "FOREX", 0.66080, 5, _FX_MOVE),
    Instrument("USDCAD", "FOREX", 1.36110, 5, _FX_MOVE),
    Instrument("USDCHF", "FOREX", 0.88240, 5, _FX_MOVE),
    Instrument("NZDUSD", "FOREX", 0.60150, 5, _FX_MOVE),
    Instrument("EURJPY", "FOREX", 164.210, 3, _FX_MOVE),
)

# Timeframe name -> bar length in seconds (the ID carries the bar open time).
TIMEFRAMES: dict[str, int] = {"M5": 300, "M15": 900, "H1": 3600}
PREFIXES: tuple[str, ...] = ("HTI11", "HTI12")
SIDES: tuple[str, ...] = ("Buy", "Sell")
ORDER_TYPES: dict[str, str] = {"Buy": "BUY LIMIT", "Sell": "SELL LIMIT"}

# Placeholders: {instrument} {order} {signal} {timeframe}.
SENTENCES: tuple[str, ...] = (
    "General market caution due to geopolitical tensions slightly reduces the strength of the mechanical {signal} signal.",
    "Oversold conditions for {instrument} introduce significant risk for a {order} despite the strong mechanical signal.",
    "Momentum on the {timeframe} chart supports a {order} on {instrument}.",
    "Volume confirms the {signal} setup on {instrument}; the level held twice this session.",
    "Mixed macro data keeps volatility elevated, so the {order} uses a wider stop than usual.",
    "The {timeframe} trend filter agrees with the {signal} signal on {instrument}.",
    "Earnings season adds event risk around {instrument}; size the {order} conservatively.",
)
FOLLOW_UPS: tuple[str, ...] = (
    "Watch the {timeframe} close before entry.",
    "Key levels:\n- entry at the limit price\n- stop beyond the last swing",
    "Invalidated if the next {timeframe} bar closes beyond the stop.",
    "Note: liquidity is thinner than usual today.",
)
UPDATE_NOTES: tuple[str, ...] = (
    "Update: levels adjusted after the latest {timeframe} bar.",
    "Update: confidence revised on fresh volume data.",
    "Update: the {signal} setup remains valid.",
)
