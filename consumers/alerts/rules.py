"""The alert rule file (YAML), loaded and validated at start.

The file is composed into YAML nodes first (yaml.compose), so every error
names the line of the offending node: a bad file fails the process with a
ConfigError (exit 2) before it reads any data. Format: infra/local/alerts.example.yaml.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from consumers.alerts import kinds
from tradebus.config import ConfigError, Env, home_dir

RULES_FILE_ENV = "TRADEBUS_ALERTS_RULES_FILE"
# Relative to TRADEBUS_HOME (the repository locally); Kubernetes mounts the
# chart's rules at /etc/tradebus/alerts.yaml and sets the variable.
DEFAULT_RULES_FILE = "infra/local/alerts.example.yaml"
SEVERITIES = ("info", "warning", "critical")
SINK_TYPES = ("log", "webhook", "email")
NULL_TAG = "tag:yaml.org,2002:null"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TOP_KEYS = ("version", "defaults", "sinks", "rules")
DEFAULT_KEYS = ("cooldown_seconds", "sinks", "severity", "include_replays")
RULE_KEYS = ("name", "kind", "enabled", "severity", "cooldown_seconds", "key", "title", "message", "sinks", "include_replays")
SINK_KEYS = {
    "log": (),
    "webhook": ("url", "url_env", "format", "timeout_seconds", "max_attempts", "backoff_seconds", "max_backoff_seconds",
                "threads", "breaker_failures", "breaker_seconds"),
    "email": ("host", "port", "from", "to", "username", "starttls", "ssl", "subject_prefix", "timeout_seconds",
              "max_attempts", "backoff_seconds", "max_backoff_seconds", "threads", "breaker_failures", "breaker_seconds"),
}


@dataclass(frozen=True)
class SinkSpec:
    name: str
    type: str
    options: dict[str, Any]
    line: int


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str
    severity: str
    cooldown_seconds: float
    key: str
    title: str
    message: str
    sinks: tuple[str, ...]
    include_replays: bool
    params: dict[str, Any]
    line: int

    @property
    def spec(self) -> kinds.KindSpec:
        return kinds.KINDS[self.kind]


@dataclass(frozen=True)
class RuleSet:
    path: str
    rules: tuple[Rule, ...]
    sinks: dict[str, SinkSpec]

    def used_sinks(self) -> list[SinkSpec]:
        used = {s for r in self.rules for s in r.sinks}
        return [spec for name, spec in self.sinks.items() if name in used]


def rules_path(env: Env, override: str | None = None) -> Path:
    return Path(override or env.str(RULES_FILE_ENV) or home_dir() / DEFAULT_RULES_FILE)


def load_rules(path: Path | str) -> RuleSet:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"{RULES_FILE_ENV}: cannot read {path} ({reason})") from None
    return parse_rules(text, str(path))


def parse_rules(text: str, where: str = "<rules>") -> RuleSet:
    return _Parser(where).parse(text)


class _Parser:
    def __init__(self, where: str):
        self.where = where
        self.loader = yaml.SafeLoader("")

    # --- YAML nodes with their lines ---------------------------------------
    def fail(self, node: yaml.Node | None, reason: str):
        line = node.start_mark.line + 1 if node is not None else 1
        raise ConfigError(f"{RULES_FILE_ENV} {self.where}, line {line}: {reason}")

    def value(self, node: yaml.Node) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.fail(node, f"invalid value ({getattr(exc, 'problem', None) or exc})")

    def mapping(self, node: yaml.Node, what: str, allowed: tuple[str, ...] | None) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, f"{what} must be a mapping")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = self.value(key_node)
            if not isinstance(key, str):
                self.fail(key_node, f"{what}: keys must be strings, got {key!r}")
            if key in out:
                self.fail(key_node, f"{what}: duplicate key {key!r}")
            if allowed is not None and key not in allowed:
                self.fail(key_node, f"{what}: unknown key {key!r} (expected one of {', '.join(allowed)})")
            out[key] = (key_node, value_node)
        return out

    def text(self, node: yaml.Node) -> Any:
        """Scalars as written: a rule named off, or the tickers ON and 1299, stay strings
        (YAML 1.1 would make them a boolean and a number)."""
        if isinstance(node, yaml.ScalarNode) and node.tag != NULL_TAG:
            return node.value
        if isinstance(node, yaml.SequenceNode):
            return [self.text(item) for item in node.value]
        return self.value(node)

    def get(self, entries: dict, key: str, parse, default: Any, what: str) -> Any:
        if key not in entries:
            return default
        node = entries[key][1]
        try:
            return parse(self.text(node) if parse in TEXT_PARSERS else self.value(node))
        except ValueError as exc:
            self.fail(node, f"{what}: {key}: {exc}")

    # --- the document ------------------------------------------------------
    def parse(self, text: str) -> RuleSet:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else 1
            raise ConfigError(f"{RULES_FILE_ENV} {self.where}, line {line}: invalid YAML: {exc.problem or exc.context}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{RULES_FILE_ENV} {self.where}: invalid YAML: {exc}") from None
        if root is None:
            self.fail(None, "the file is empty: expected a mapping with a 'rules:' list")
        top = self.mapping(root, "the rule file", TOP_KEYS)
        if "version" in top and self.value(top["version"][1]) != 1:
            self.fail(top["version"][1], "version: only version 1 is supported")
        defaults = self._defaults(top)
        sinks = self._sinks(top)
        if "rules" not in top:
            self.fail(root, "missing 'rules:' (a list of rules; may be empty)")
        rules_node = top["rules"][1]
        if isinstance(rules_node, yaml.ScalarNode) and self.value(rules_node) is None:
            rules_nodes = []
        elif isinstance(rules_node, yaml.SequenceNode):
            rules_nodes = rules_node.value
        else:
            self.fail(rules_node, "rules: expected a list of rules")
        rules: list[Rule] = []
        seen: set[str] = set()
        for node in rules_nodes:
            rule = self._rule(node, defaults, sinks)
            if rule is None:
                continue
            if rule.name in seen:
                self.fail(node, f"rule {rule.name!r}: duplicate rule name")
            seen.add(rule.name)
            rules.append(rule)
        return RuleSet(self.where, tuple(rules), sinks)

    def _defaults(self, top) -> dict[str, Any]:
        out = {"cooldown_seconds": 300.0, "sinks": ("log",), "sinks_node": None, "severity": "warning", "include_replays": False}
        if "defaults" not in top:
            return out
        entries = self.mapping(top["defaults"][1], "defaults", DEFAULT_KEYS)
        out["cooldown_seconds"] = self.get(entries, "cooldown_seconds", _cooldown, out["cooldown_seconds"], "defaults")
        out["severity"] = self.get(entries, "severity", kinds.choice(*SEVERITIES), out["severity"], "defaults")
        out["include_replays"] = self.get(entries, "include_replays", kinds.boolean, False, "defaults")
        if "sinks" in entries:
            out["sinks"] = self.get(entries, "sinks", _sink_names, None, "defaults")
            out["sinks_node"] = entries["sinks"][1]
        return out

    def _sinks(self, top) -> dict[str, SinkSpec]:
        sinks = {"log": SinkSpec("log", "log", {}, 0)}
        if "sinks" not in top:
            return sinks
        for name, (key_node, node) in self.mapping(top["sinks"][1], "sinks", None).items():
            if not NAME.match(name):
                self.fail(key_node, f"sink name {name!r}: use letters, digits, '.', '_' or '-'")
            what = f"sink {name!r}"
            entries = self.mapping(node, what, None)
            sink_type = self.get(entries, "type", kinds.choice(*SINK_TYPES), None, what)
            if sink_type is None:
                self.fail(node, f"{what}: missing 'type' (one of {', '.join(SINK_TYPES)})")
            if "password" in entries:
                self.fail(entries["password"][0], f"{what}: passwords do not belong in the rule file; "
                                                  "set TRADEBUS_ALERTS_SMTP_PASSWORD (a secret)")
            allowed = ("type", *SINK_KEYS[sink_type])
            for key, (k_node, _) in entries.items():
                if key not in allowed:
                    self.fail(k_node, f"{what}: unknown key {key!r} for a {sink_type} sink (expected one of {', '.join(allowed)})")
            options = {}
            for key in SINK_KEYS[sink_type]:
                if key in entries:
                    options[key] = self.get(entries, key, lambda v, k=key: _sink_option(k, v), None, what)
            sinks[name] = SinkSpec(name, sink_type, options, node.start_mark.line + 1)
        return sinks

    def _rule(self, node: yaml.Node, defaults: dict, sinks: dict[str, SinkSpec]) -> Rule | None:
        entries = self.mapping(node, "a rule", None)
        if "name" not in entries:
            self.fail(node, "a rule needs a 'name'")
        name = self.get(entries, "name", _rule_name, None, "rule")
        what = f"rule {name!r}"
        if "kind" not in entries:
            self.fail(node, f"{what}: missing 'kind' (one of {', '.join(kinds.KINDS)})")
        kind = self.get(entries, "kind", kinds.choice(*kinds.KINDS), None, what)
        spec = kinds.KINDS[kind]
        allowed = RULE_KEYS + tuple(spec.params) + tuple(a for a, p in kinds.FILTER_ALIASES.items() if p in spec.params)
        params: dict[str, Any] = dict(spec.defaults)
        for key, (k_node, v_node) in entries.items():
            if key not in allowed:
                self.fail(k_node, f"{what}: unknown key {key!r} for kind {kind} (expected one of {', '.join(allowed)})")
            param = kinds.FILTER_ALIASES.get(key, key) if key not in RULE_KEYS else None
            if param is None:
                continue
            if param != key and param in entries:
                self.fail(k_node, f"{what}: give either {key!r} or {param!r}, not both")
            params[param] = self.get(entries, key, spec.params[param], None, what)
        for key in spec.required:
            if key not in params:
                self.fail(node, f"{what}: kind {kind} needs {key!r}")
        if not self.get(entries, "enabled", kinds.boolean, True, what):
            return None
        if "sinks" in entries:
            sink_names = self.get(entries, "sinks", _sink_names, None, what)
            sinks_node = entries["sinks"][1]
        else:
            sink_names, sinks_node = defaults["sinks"], defaults["sinks_node"] or node
        for sink in sink_names:
            if sink not in sinks:
                self.fail(sinks_node, f"{what}: unknown sink {sink!r} (defined: {', '.join(sinks)})")
        templates = {}
        fields = spec.template_fields()
        for key in ("key", "title", "message"):
            templates[key] = self.get(entries, key, lambda v: _template(v, fields), getattr(spec, key), what)
        return Rule(
            name=name, kind=kind,
            severity=self.get(entries, "severity", kinds.choice(*SEVERITIES), defaults["severity"], what),
            cooldown_seconds=self.get(entries, "cooldown_seconds", _cooldown, defaults["cooldown_seconds"], what),
            key=templates["key"], title=templates["title"], message=templates["message"],
            sinks=tuple(sink_names),
            include_replays=self.get(entries, "include_replays", kinds.boolean, defaults["include_replays"], what),
            params=params, line=node.start_mark.line + 1,
        )


def _rule_name(value: Any) -> str:
    if not isinstance(value, str) or not NAME.match(value):
        raise ValueError(f"expected letters, digits, '.', '_' or '-' (at most 64), got {value!r}")
    return value


def _cooldown(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"expected a number of seconds, 0 or more, got {value!r}")
    return float(value)


def _sink_names(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise ValueError("expected a sink name or a non-empty list of sink names")
    if len(set(items)) != len(items):
        raise ValueError("a sink is listed twice")
    return tuple(items)


def _template(value: Any, fields: frozenset[str]) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty template string")
    try:
        parsed = list(string.Formatter().parse(value))
    except ValueError as exc:
        raise ValueError(f"bad template {value!r}: {exc}") from None
    for _, field_name, _, _ in parsed:
        if field_name is None:
            continue
        if not field_name or not field_name.isidentifier():
            raise ValueError(f"template field {{{field_name}}}: use a plain field name (no positions, attributes or indexes)")
        if field_name not in fields:
            raise ValueError(f"unknown template field {{{field_name}}} (available: {', '.join(sorted(fields))})")
    return value


_POSITIVE_INT = {"port": (1, 65535), "max_attempts": (1, 10), "threads": (1, 64), "breaker_failures": (1, 1000)}
_POSITIVE_SECONDS = ("timeout_seconds", "backoff_seconds", "max_backoff_seconds", "breaker_seconds")


def _sink_option(key: str, value: Any) -> Any:
    if key in _POSITIVE_INT:
        low, high = _POSITIVE_INT[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"expected an integer from {low} to {high}, got {value!r}")
        return value
    if key in _POSITIVE_SECONDS:
        return kinds.seconds(value)
    if key in ("starttls", "ssl"):
        return kinds.boolean(value)
    if key == "format":
        return kinds.choice("json", "slack")(value)
    if key == "to":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items or not all(isinstance(i, str) and "@" in i for i in items):
            raise ValueError("expected an e-mail address or a list of them")
        return tuple(items)
    if key == "url":
        if not isinstance(value, str) or not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("expected an http:// or https:// URL")
        return value
    if key == "url_env":
        if not isinstance(value, str) or not re.match(r"^[A-Z_][A-Z0-9_]*$", value):
            raise ValueError("expected an environment variable name")
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty string")
    return value


TEXT_PARSERS = (kinds.names, kinds.order_statuses, _rule_name, _sink_names)
