"""Reproducible generator of trade-idea versions.

One global stream of versions: each call to ``next()`` either creates a new
idea or re-emits an earlier one with a strictly later ``LAST_UPDATE`` (the
docs' "re-emission", spec §5.3). With the same seed and the same clock
readings the output is identical; with a wall clock only the time fields and
the IDs (which carry the bar time) differ between runs.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from simulators.hti.catalog import (
    FOLLOW_UPS, INSTRUMENTS, ORDER_TYPES, PREFIXES, SENTENCES, SIDES, TIMEFRAMES, UPDATE_NOTES, Instrument,
)
from simulators.hti.timefmt import format_idea_time, idea_wall_time

IDEA_LIFETIME = dt.timedelta(hours=1)  # EXPIRATION_TIME - LAST_UPDATE in both doc examples
EXTRA_FIELD = "RISK_SCORE"


@dataclass(frozen=True)
class IdeaVersion:
    version: int  # global counter, also the SSE ``id:``
    idea: dict
    text: str  # the JSON text sent as the event data
    is_update: bool
    last_update_epoch: int  # the instant behind LAST_UPDATE, for ordering
    creation_epoch: int

    @property
    def idea_id(self) -> str:
        return self.idea["idea_id"]


@dataclass
class _IdeaState:
    instrument: Instrument
    idea: dict
    creation_epoch: int
    last_update_epoch: int
    last_update_wall: dt.datetime
    base_description: str  # update notes are appended to this, not to each other


class _BarAllocator:
    """Bar times for IDs so that an ID is never reused for a different idea.

    The ID carries the open time of the last completed bar (as in the docs'
    examples). When that bar already has an idea for the same prefix,
    instrument and timeframe, the nearest older unused bar is taken: every
    value handed out lies outside the range handed out before, so it is new.
    """

    def __init__(self) -> None:
        self._ranges: dict[tuple[str, str, str], tuple[dt.datetime, dt.datetime]] = {}

    def allocate(self, key: tuple[str, str, str], bar_open: dt.datetime, bar_seconds: int) -> dt.datetime:
        known = self._ranges.get(key)
        if known is None:
            self._ranges[key] = (bar_open, bar_open)
            return bar_open
        low, high = known
        if bar_open > high:
            self._ranges[key] = (low, bar_open)
            return bar_open
        if bar_open < low:
            self._ranges[key] = (bar_open, high)
            return bar_open
        older = low - dt.timedelta(seconds=bar_seconds)
        self._ranges[key] = (older, high)
        return older


def _last_completed_bar(wall: dt.datetime, bar_seconds: int) -> dt.datetime:
    since_midnight = wall.hour * 3600 + wall.minute * 60 + wall.second
    return wall - dt.timedelta(seconds=since_midnight % bar_seconds + bar_seconds)


def _percent(value: float) -> str:
    """Signed, two decimals; never "+0.00%"/"-0.00%"."""
    rounded = round(value, 2)
    if abs(rounded) < 0.01:
        rounded = 0.01 if value >= 0 else -0.01
    return f"{rounded:+.2f}%"


class IdeaGenerator:
    def __init__(
        self,
        seed: int | None = None,
        *,
        fixed_est: bool = False,
        update_probability: float = 0.2,
        multiline_probability: float = 0.3,
        extra_field: bool = False,
        pool_size: int = 256,
        clock: Callable[[], float] = time.time,
    ):
        self._rng = random.Random(seed)
        self.fixed_est = fixed_est
        self.update_probability = update_probability
        self.multiline_probability = multiline_probability
        self.extra_field = extra_field
        self._pool_size = pool_size
        self._clock = clock
        self._prices = {i.symbol: i.base_price for i in INSTRUMENTS}
        self._pool: OrderedDict[str, _IdeaState] = OrderedDict()  # ideas that may still be updated
        self._bars = _BarAllocator()
        self._version = 0

    def next(self) -> IdeaVersion:
        now = int(self._clock())
        if self._pool and self._rng.random() < self.update_probability:
            state = self._pool[self._rng.choice(list(self._pool))]
            return self._update(state, now)
        return self._create(now)

    # -- creation -------------------------------------------------------

    def _create(self, now: int) -> IdeaVersion:
        rng = self._rng
        instrument = rng.choice(INSTRUMENTS)
        timeframe = rng.choice(tuple(TIMEFRAMES))
        prefix = rng.choice(PREFIXES)
        side = rng.choice(SIDES)
        creation_epoch = now - rng.randint(0, 170)  # created a little before it is published
        creation_wall = idea_wall_time(creation_epoch, self.fixed_est)
        bar_seconds = TIMEFRAMES[timeframe]
        bar = self._bars.allocate(
            (prefix, instrument.symbol, timeframe), _last_completed_bar(creation_wall, bar_seconds), bar_seconds
        )
        idea_id = f"{prefix}_TB_{instrument.symbol}_{timeframe}_{bar:%Y%m%d_%H%M%S}"
        last_update_wall = idea_wall_time(now, self.fixed_est)
        idea = {"ID": idea_id, "idea_id": idea_id, "document_id": idea_id, "PREFIX": prefix,
                "ASSET_CLASS": instrument.asset_class, "INSTRUMENT": instrument.symbol, "TIMEFRAME": timeframe,
                "SIDE": side, "OPEN_ORDER_TYPE": ORDER_TYPES[side]}
        idea.update(self._levels(instrument, side))
        idea["CONFIDENCE"] = f"{rng.randint(55, 95)}%"
        idea["DESCRIPTION"] = self._description(instrument, idea)
        idea["CREATION_TIME"] = format_idea_time(creation_wall)
        idea["LAST_UPDATE"] = format_idea_time(last_update_wall)
        idea["EXPIRATION_TIME"] = format_idea_time(last_update_wall + IDEA_LIFETIME)
        self._add_extra_field(idea)
        state = _IdeaState(instrument, idea, creation_epoch, now, last_update_wall, idea["DESCRIPTION"])
        self._pool[idea_id] = state
        if len(self._pool) > self._pool_size:
            self._pool.popitem(last=False)
        return self._version_of(state, is_update=False)

    def _levels(self, instrument: Instrument, side: str) -> dict:
        rng = self._rng
        market = self._prices[instrument.symbol] * (1 + rng.gauss(0.0, 0.002))  # random walk
        self._prices[instrument.symbol] = market
        sign = 1 if side == "Buy" else -1
        entry = market * (1 - sign * rng.uniform(0.0, 0.0025))  # limit orders wait for a better price
        move = rng.uniform(*instrument.move_pct) / 100
        stop_ratio = rng.choice((1.5, 2.0, 2.0, 2.5))  # the docs' examples use 2
        digits = instrument.decimals
        price = round(entry, digits)
        take_profit = round(entry * (1 + sign * move), digits)
        stop_loss = round(entry * (1 - sign * move * stop_ratio), digits)
        estimate = move * 100 if rng.random() >= 0.15 else -rng.uniform(0.05, move * stop_ratio * 100)
        return {"PRICE": price, "TAKE_PROFIT": take_profit, "STOP_LOSS": stop_loss, "ESTIMATED_PL": _percent(estimate)}

    def _description(self, instrument: Instrument, idea: dict) -> str:
        rng = self._rng
        words = {"instrument": instrument.symbol, "order": idea["OPEN_ORDER_TYPE"],
                 "signal": idea["SIDE"].upper(), "timeframe": idea["TIMEFRAME"]}
        sentence = rng.choice(SENTENCES).format(**words)
        follow_up = rng.choice(FOLLOW_UPS).format(**words)  # drawn always: same sequence whatever the probability
        if rng.random() < self.multiline_probability:
            return f"{sentence}\n{follow_up}"
        return sentence

    def _add_extra_field(self, idea: dict) -> None:
        score = self._rng.randint(1, 5)  # drawn always: the switch does not change the other values
        if self.extra_field:
            idea[EXTRA_FIELD] = score

    # -- updates --------------------------------------------------------

    def _update(self, state: _IdeaState, now: int) -> IdeaVersion:
        rng = self._rng
        # At least one second after the previous version, so the strings differ.
        epoch = max(now, state.last_update_epoch + 1)
        wall = idea_wall_time(epoch, self.fixed_est)
        while wall <= state.last_update_wall:  # DST fall-back repeats an hour of wall time
            epoch += int((state.last_update_wall - wall).total_seconds()) + 1
            wall = idea_wall_time(epoch, self.fixed_est)
        idea = dict(state.idea)
        if rng.random() < 0.5:
            idea.update(self._levels(state.instrument, idea["SIDE"]))
        confidence = int(idea["CONFIDENCE"].rstrip("%")) + rng.randint(-6, 6)
        idea["CONFIDENCE"] = f"{min(99, max(50, confidence))}%"
        note = rng.choice(UPDATE_NOTES).format(timeframe=idea["TIMEFRAME"], signal=idea["SIDE"].upper())
        if rng.random() < 0.4:
            idea["DESCRIPTION"] = f"{state.base_description}\n{note}"
        idea["LAST_UPDATE"] = format_idea_time(wall)
        idea["EXPIRATION_TIME"] = format_idea_time(wall + IDEA_LIFETIME)
        self._add_extra_field(idea)
        state.idea, state.last_update_epoch, state.last_update_wall = idea, epoch, wall
        self._pool.move_to_end(idea["idea_id"])
        return self._version_of(state, is_update=True)

    def _version_of(self, state: _IdeaState, *, is_update: bool) -> IdeaVersion:
        self._version += 1
        return IdeaVersion(self._version, state.idea, json.dumps(state.idea), is_update,
                           state.last_update_epoch, state.creation_epoch)
