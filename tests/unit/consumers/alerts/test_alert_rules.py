"""The rule file: the example loads; every kind of mistake fails with the
line of the offending node and the reason (ConfigError -> exit 2)."""

import textwrap
from decimal import Decimal

import pytest

from consumers.alerts.kinds import KINDS
from consumers.alerts.rules import DEFAULT_RULES_FILE, load_rules, parse_rules, rules_path
from tradebus.cli import main
from tradebus.config import REPO_ROOT, ConfigError, Env, home_dir


def parse(text: str):
    return parse_rules(textwrap.dedent(text), "test.yaml")


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as err:
        parse(text)
    return str(err.value)


def test_the_example_file_loads_and_covers_every_kind():
    ruleset = load_rules(REPO_ROOT / DEFAULT_RULES_FILE)
    assert {r.kind for r in ruleset.rules} == set(KINDS)
    assert all(r.sinks == ("log",) for r in ruleset.rules)  # the disabled rule's sinks are not built
    assert "critical-to-team" not in {r.name for r in ruleset.rules}
    assert [s.name for s in ruleset.used_sinks()] == ["log"]


def test_default_path_is_under_tradebus_home(tmp_path):
    assert rules_path(Env({})) == home_dir() / DEFAULT_RULES_FILE
    assert rules_path(Env({"TRADEBUS_ALERTS_RULES_FILE": str(tmp_path / "r.yaml")})) == tmp_path / "r.yaml"
    assert rules_path(Env({}), override="x.yaml").name == "x.yaml"


def test_rule_fields_defaults_aliases_and_exact_decimals():
    ruleset = parse("""
        defaults:
          cooldown_seconds: 30
          severity: info
        rules:
          - name: etf
            kind: new_idea
            instrument: gld
            sides: [Buy, sell]
            min_confidence: 0.75
          - name: fill
            kind: large_fill
            min_notional: 0.1
            cooldown_seconds: 0
            severity: critical
          - name: orders
            kind: order_rejected_or_cancelled
            statuses: [REJECTED]
          - name: silent
            kind: producer_silent
            silent_seconds: 5
            per: source
          - name: off
            kind: gap_reported
            enabled: false
        """)
    etf, fill, orders, silent = ruleset.rules
    assert etf.params == {"instruments": frozenset({"GLD"}), "sides": frozenset({"BUY", "SELL"}), "min_confidence": 0.75}
    assert (etf.cooldown_seconds, etf.severity, etf.key) == (30.0, "info", "{rule}:{idea_id}")
    assert fill.params["min_notional"] == Decimal("0.1")  # through the text, not the binary float
    assert (fill.cooldown_seconds, fill.severity) == (0.0, "critical")
    assert orders.params["statuses"] == frozenset({"ORDER_STATUS_REJECTED"})
    assert silent.params == {"per": "source", "silent_seconds": 5.0}
    assert etf.line == 6 and fill.line == 11


@pytest.mark.parametrize("text,line,words", [
    ("rules:\n  - name: a\n    kind: large_fil\n    min_notional: 1\n", 3, ["rule 'a'", "large_fil", "expected one of"]),
    ("rules:\n  - name: a\n    kind: large_fill\n", 2, ["rule 'a'", "needs 'min_notional'"]),
    ("rules:\n  - name: a\n    kind: large_fill\n    min_notional: lots\n", 4, ["min_notional", "expected a number"]),
    ("rules:\n  - name: a\n    kind: new_idea\n    min_confidence: 90\n", 4, ["min_confidence", "between 0 and 1"]),
    ("rules:\n  - name: a\n    kind: new_idea\n    min_conf: 0.9\n", 4, ["unknown key 'min_conf'"]),
    ("rules:\n  - name: a\n    kind: new_idea\n  - name: a\n    kind: new_idea\n", 4, ["duplicate rule name"]),
    ("rules:\n  - name: a\n    kind: new_idea\n    kind: large_fill\n", 4, ["duplicate key 'kind'"]),
    ("rules:\n  - name: a\n    kind: new_idea\n    sinks: [pager]\n", 4, ["unknown sink 'pager'"]),
    ("rules:\n  - name: a\n    kind: new_idea\n    key: '{rule}:{order_id}'\n", 4, ["unknown template field {order_id}", "idea_id"]),
    ("rules:\n  - name: a\n    kind: new_idea\n    key: '{rule.__class__}'\n", 4, ["plain field name"]),
    ("rules:\n  - name: a\n    kind: new_idea\n    cooldown_seconds: -1\n", 4, ["cooldown_seconds"]),
    ("rules:\n  - name: a\n    kind: producer_silent\n    silent_seconds: 0\n", 4, ["silent_seconds", "above 0"]),
    ("rules:\n  - name: a\n    kind: producer_silent\n    silent_seconds: 5\n    per: host\n", 5, ["per", "instance, source"]),
    ("rules:\n  - name: a\n    kind: new_idea\n    side: Buy\n    sides: [Sell]\n", 4, ["either 'side' or 'sides'"]),
    ("rules:\n  - name: 'bad name!'\n    kind: new_idea\n", 2, ["expected letters"]),
    ("rules:\n  - kind: new_idea\n", 2, ["needs a 'name'"]),
    ("rules:\n  - name: a\n", 2, ["missing 'kind'"]),
    ("rules:\n  - name: a\n    kind: new_idea\n    severity: urgent\n", 4, ["severity", "info, warning, critical"]),
    ("rules:\n  - name: a\n    kind: new_idea\n   bad_indent: 1\n", 4, ["invalid YAML"]),
    ("rules:\n  - name: a\n    kind: [new_idea\n", 4, ["invalid YAML"]),
    ("rules: {a: 1}\n", 1, ["expected a list of rules"]),
    ("rulez: []\n", 1, ["unknown key 'rulez'"]),
    ("version: 2\nrules: []\n", 1, ["only version 1"]),
    ("", 1, ["empty"]),
    ("sinks:\n  hook:\n    type: webhook\n    password: x\nrules: []\n", 4, ["TRADEBUS_ALERTS_SMTP_PASSWORD"]),
    ("sinks:\n  hook:\n    type: pager\nrules: []\n", 3, ["sink 'hook'", "log, webhook, email"]),
    ("sinks:\n  hook:\n    type: webhook\n    max_attempts: 0\nrules: []\n", 4, ["max_attempts", "from 1 to 10"]),
    ("sinks:\n  hook:\n    type: webhook\n    format: teams\nrules: []\n", 4, ["format", "json, slack"]),
    ("sinks:\n  mail:\n    type: email\n    tls: true\nrules: []\n", 4, ["unknown key 'tls'"]),
    ("defaults:\n  sinks: [nowhere]\nrules:\n  - name: a\n    kind: new_idea\n", 2, ["unknown sink 'nowhere'"]),
])
def test_a_bad_rule_file_names_the_line_and_the_reason(text, line, words):
    message = error_of(text)
    assert message.startswith(f"TRADEBUS_ALERTS_RULES_FILE test.yaml, line {line}: "), message
    for word in words:
        assert word in message, message


def test_an_empty_rule_list_is_valid():
    assert parse("rules: []\n").rules == ()
    assert parse("rules:\n").rules == ()


def test_webhook_url_is_validated_without_echoing_it():
    message = error_of("sinks:\n  hook:\n    type: webhook\n    url: ftp://secret-token@x\nrules: []\n")
    assert "line 4" in message and "secret-token" not in message


def test_unreadable_file_names_the_setting(tmp_path):
    with pytest.raises(ConfigError, match="TRADEBUS_ALERTS_RULES_FILE: cannot read"):
        load_rules(tmp_path / "missing.yaml")


def test_cli_exits_2_naming_the_line(tmp_path, capsys):
    bad = tmp_path / "alerts.yaml"
    bad.write_text("rules:\n  - name: big\n    kind: large_fill\n    min_notional: 1\n    sinks: [log, slack]\n")
    assert main(["consume", "alerts", "--rules", str(bad), "--check"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}, line 5" in err and "unknown sink 'slack'" in err


def test_cli_check_accepts_the_example(capsys):
    assert main(["consume", "alerts", "--check"]) == 0
    assert '"large_fill"' in capsys.readouterr().out
