"""Pure rule evaluation: decoded records in, alert candidates out. No Kafka,
no I/O, no wall-clock reads except through the injected clock, so every
rule kind is tested with plain dicts.

State kept in memory (a restart starts fresh, documented):
- position_change: the last quantity seen per account and symbol; the first
  record of a position after start only sets the baseline.
- producer_silent: the last status event per source (or source/instance).
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from consumers.alerts.kinds import KINDS
from consumers.alerts.rules import Rule, RuleSet
from tradebus.topics import STATUS, Topic

# Kept out of alert details: large or free text (nested values are skipped too).
DETAIL_SKIP = {"upstream_json", "unknown_fields", "description"}
NESTED = "…"


class EvaluationError(ValueError):
    """A record's values cannot be evaluated (e.g. a quantity that is not a decimal)."""


@dataclass
class Candidate:
    """An alert a rule wants to fire, before cooldown and delivery."""

    rule: Rule
    key: str
    title: str
    message: str
    source_topic: str | None
    source_key: str | None
    event_time: datetime | None
    details: dict[str, str] = field(default_factory=dict)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _text(value: Any) -> Any:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return NESTED
    return value


class _Formatter(string.Formatter):
    """A field the kind knows but this alert lacks (e.g. {kind} in a silence)
    renders as "-"; a format spec that does not fit the value ("-" with :.0%)
    falls back to the plain value instead of failing the alert."""

    def get_value(self, key, args, kwargs):
        return kwargs.get(key, "-")

    def format_field(self, value, format_spec):
        try:
            return format(value, format_spec)
        except (ValueError, TypeError):
            return str(value)


_FORMATTER = _Formatter()


class _Fields(dict):
    def __missing__(self, key: str) -> str:
        return "-"


def render(template: str, fields: dict[str, Any]) -> str:
    try:
        return template.format_map(fields)  # the fast path, in C
    except (KeyError, ValueError, TypeError):
        return _FORMATTER.vformat(template, (), fields)


def _decimal(record: dict, name: str) -> Decimal:
    try:
        value = Decimal(str(record[name]))
    except (InvalidOperation, KeyError, TypeError):
        raise EvaluationError(f"{name}: not a decimal: {record.get(name)!r}") from None
    if not value.is_finite():
        raise EvaluationError(f"{name}: not a finite decimal: {record.get(name)!r}")
    return value


def _allowed(rule: Rule, param: str, value: Any) -> bool:
    wanted = rule.params.get(param)
    return wanted is None or (value is not None and str(value).upper() in wanted)


@dataclass
class _Silence:
    last_seen: datetime
    last_kind: str
    partition: int | None
    fired: bool = False


class Evaluator:
    def __init__(self, ruleset: RuleSet, clock: Callable[[], datetime] = utcnow):
        self.rules = ruleset.rules
        self.clock = clock
        self.started_at = clock()
        self.positions: dict[tuple[str, str], Decimal] = {}
        self.silences: dict[str, dict[tuple[str, str], _Silence]] = {
            r.name: {} for r in self.rules if r.kind == "producer_silent"
        }
        self._by_topic: dict[str, list[Rule]] = {}
        for rule in self.rules:
            self._by_topic.setdefault(KINDS[rule.kind].topic.name, []).append(rule)

    def input_topics(self) -> list[Topic]:
        """The registry topics the loaded rules read (unique topics and/or status)."""
        seen: dict[str, Topic] = {}
        for rule in self.rules:
            topic = KINDS[rule.kind].topic
            seen.setdefault(topic.name, topic)
        return list(seen.values())

    # --- records -------------------------------------------------------------
    def on_record(self, topic: Topic, record: dict, *, topic_name: str | None = None,
                  key: str | None = None, partition: int | None = None) -> list[Candidate]:
        rules = self._by_topic.get(topic.name, [])
        if not rules:
            return []
        if topic.name == STATUS.name:
            return self._status(rules, record, topic_name or topic.name, key, partition)
        fields = self._data_fields(topic, record)
        replay = bool(record.get("metadata", {}).get("replay"))
        out: list[Candidate] = []
        is_position = topic.value_schema == "tradebus.v1.BrokerPosition"
        previous_position = quantity = None
        if is_position:
            previous_position = self.positions.get((record["account_id"], record["symbol"]))
            quantity = _decimal(record, "quantity")
        for rule in rules:
            if replay and not rule.include_replays:
                continue
            extra = self._match(rule, record, previous_position)
            if extra is not None:
                out.append(self._candidate(rule, {**fields, **extra}, topic_name or topic.name, key,
                                           record.get("metadata", {}).get("received_at")))
        if is_position:  # replays too: a primed snapshot is a good baseline
            self.positions[(record["account_id"], record["symbol"])] = quantity
        return out

    def _match(self, rule: Rule, record: dict, previous_position: Decimal | None) -> dict | None:
        """Extra template fields when the rule matches, None when it does not."""
        p = rule.params
        if rule.kind == "new_idea":
            ok = (_allowed(rule, "instruments", record.get("instrument")) and _allowed(rule, "sides", record.get("side"))
                  and _allowed(rule, "asset_classes", record.get("asset_class"))
                  and _allowed(rule, "timeframes", record.get("timeframe")))
            if ok and "min_confidence" in p:
                ok = record.get("confidence") is not None and record["confidence"] >= p["min_confidence"]
            return {} if ok else None
        if not (_allowed(rule, "accounts", record.get("account_id")) and _allowed(rule, "symbols", record.get("symbol"))):
            return None
        if rule.kind == "order_rejected_or_cancelled":
            status = record.get("order_status") or ""
            if status not in p["statuses"]:
                return None
            return {"status_name": status.removeprefix("ORDER_STATUS_")}
        if rule.kind == "large_fill":
            notional = _decimal(record, "quantity") * _decimal(record, "price")
            return {"notional": str(notional)} if abs(notional) > p["min_notional"] else None
        if rule.kind == "position_change":
            quantity = _decimal(record, "quantity")
            if previous_position is None:
                if not p["alert_on_first"]:
                    return None
                previous_position = Decimal(0)
            change = quantity - previous_position
            if abs(change) <= p["min_change"]:
                return None
            return {"previous_quantity": str(previous_position), "change": f"{change:+}"}
        raise AssertionError(f"unhandled kind {rule.kind}")

    def _status(self, rules: list[Rule], record: dict, topic_name: str, key: str | None,
                partition: int | None) -> list[Candidate]:
        out = []
        for rule in rules:
            if not _allowed(rule, "sources", record.get("source")):
                continue
            if rule.kind == "gap_reported":
                if record.get("kind") == "gap" and _allowed(rule, "event_types", record.get("event_type")):
                    out.append(self._candidate(rule, self._status_fields(record), topic_name, key, record.get("emitted_at")))
            elif rule.kind == "producer_silent":
                self._saw(rule, record, partition)
        return out

    def _saw(self, rule: Rule, record: dict, partition: int | None) -> None:
        kinds = rule.params.get("kinds")
        kind = record.get("kind") or ""
        if kinds is not None and kind.upper() not in kinds and kind != "stopped":
            return
        per_instance = rule.params["per"] == "instance"
        ident = (record["source"], record["producer_instance"] if per_instance else "*")
        tracked = self.silences[rule.name]
        if kind == "stopped" and per_instance:
            tracked.pop(ident, None)  # an announced stop is not a silence
            return
        seen = tracked.get(ident)
        emitted = record["emitted_at"]
        if seen is None or emitted > seen.last_seen:
            tracked[ident] = _Silence(emitted, kind, partition)

    # --- the worker's own timer ---------------------------------------------
    def on_timer(self, now: datetime | None = None) -> list[Candidate]:
        """Silence checks; called on a timer whether or not records arrive.
        A silence is measured from the later of the last event and the
        evaluator's start, so catching up a backlog of old heartbeats after
        a restart does not fire before the limit has passed in real time."""
        now = now or self.clock()
        out = []
        for rule in self.rules:
            if rule.kind != "producer_silent":
                continue
            limit = rule.params["silent_seconds"]
            for (source, instance), seen in self.silences[rule.name].items():
                if seen.fired:
                    continue
                since = max(seen.last_seen, self.started_at)
                if (now - since).total_seconds() > limit:
                    seen.fired = True  # once per silence: reset by the next event
                    fields = {
                        "source": source, "producer_instance": instance, "silent_seconds": f"{limit:g}",
                        "silent_for": f"{(now - seen.last_seen).total_seconds():.0f}",
                        "last_seen": seen.last_seen.isoformat(), "last_kind": seen.last_kind,
                    }
                    out.append(self._candidate(rule, fields, None, f"{source}/{instance}", seen.last_seen))
        return out

    def forget_partitions(self, topic: Topic, partitions: set[int]) -> None:
        """Partitions revoked in a rebalance: their silences are another worker's now."""
        if topic.name != STATUS.name:
            return
        for tracked in self.silences.values():
            for ident in [i for i, s in tracked.items() if s.partition in partitions]:
                del tracked[ident]

    # --- fields and rendering -------------------------------------------------
    @staticmethod
    def _data_fields(topic: Topic, record: dict) -> dict[str, Any]:
        fields = {k: v for k, v in record.items() if k != "metadata" and not isinstance(v, bytes)}
        meta = record.get("metadata") or {}
        fields.update(source=meta.get("source"), producer_instance=meta.get("producer_instance"),
                      upstream_event=meta.get("upstream_event"), replay=meta.get("replay"),
                      ingested_at=meta.get("received_at"))
        return fields

    @staticmethod
    def _status_fields(record: dict) -> dict[str, Any]:
        return {k: v for k, v in record.items() if not isinstance(v, (bytes, dict))}

    @staticmethod
    def _candidate(rule: Rule, fields: dict[str, Any], topic_name: str | None, key: str | None,
                   event_time: datetime | None) -> Candidate:
        values = _Fields((k, _text(v)) for k, v in fields.items())
        values.update(rule=rule.name, severity=rule.severity)
        details = {k: str(v) for k, v in values.items() if k not in DETAIL_SKIP and v not in ("-", NESTED)}
        return Candidate(
            rule=rule, key=render(rule.key, values), title=render(rule.title, values),
            message=render(rule.message, values), source_topic=topic_name, source_key=key,
            event_time=event_time, details=details,
        )
