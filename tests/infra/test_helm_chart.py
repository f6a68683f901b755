"""The Helm chart and the image definition agree with the application.

Static checks that need no helm binary (infra/k8s-validate.sh renders and
validates the chart itself): the chart's topic list is the topic registry,
the chart's rule checker catches what it should, the Dockerfile copies every
package the project installs.
"""

from __future__ import annotations

import importlib.util
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from tradebus.topics import ALL_TOPICS

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "infra" / "helm" / "tradebus"
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())


def _load_validator():
    path = ROOT / "infra" / "helm" / "validation" / "validate_manifests.py"
    spec = importlib.util.spec_from_file_location("validate_manifests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_chart_topics_are_the_topic_registry():
    chart = {t["name"]: (t["partitions"], t["config"]) for t in VALUES["topics"]}
    registry = {t.name: (t.partitions, t.config()) for t in ALL_TOPICS}
    assert chart == registry


def _producer(name: str, secret: str) -> dict:
    labels = {"app.kubernetes.io/name": "tradebus", "tradebus.io/producer-instance": name}
    container = {
        "name": "tradebus",
        "env": [
            {"name": "TRADEBUS_INSTANCE_ID", "value": name},
            {"name": "TRADEBUS_HTI_API_CODE", "valueFrom": {"secretKeyRef": {"name": secret, "key": "api-code"}}},
        ],
        "livenessProbe": {"httpGet": {"path": "/healthz"}},
        "readinessProbe": {"httpGet": {"path": "/readyz"}},
        "resources": {"requests": {"cpu": "1", "memory": "1Mi"}, "limits": {"cpu": "1", "memory": "1Mi"}},
        "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    return {
        "kind": "StatefulSet", "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"automountServiceAccountToken": False, "terminationGracePeriodSeconds": 60,
                     "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [container], "volumes": [{"name": "tmp", "emptyDir": {}}]},
        }},
    }


def test_rule_checker_accepts_a_good_producer_and_flags_a_shared_credential():
    rules = _load_validator().rule_errors
    assert rules([_producer("a", "s1"), _producer("b", "s2")]) == []
    problems = rules([_producer("a", "s1"), _producer("b", "s1")])
    assert any("credential" in p for p in problems)


def test_rule_checker_flags_a_second_replica_and_a_pdb_over_a_singleton():
    rules = _load_validator().rule_errors
    doubled = _producer("a", "s1")
    doubled["spec"]["replicas"] = 2
    pdb = {"kind": "PodDisruptionBudget", "metadata": {"name": "p"},
           "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"tradebus.io/producer-instance": "b"}}}}
    problems = rules([doubled, _producer("b", "s2"), pdb])
    assert any("exactly one replica" in p for p in problems)
    assert any("PodDisruptionBudget" in p for p in problems)


def test_dockerfile_copies_every_installed_package():
    dockerfile = (ROOT / "infra" / "docker" / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\S+?)/? ", dockerfile, re.M))
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages | {"schemas", "protos", "pyproject.toml"} <= copied


def _exported_series_names() -> set[str]:
    from prometheus_client.metrics import MetricWrapperBase

    import tradebus.metrics as metrics

    suffixes = {"counter": ["_total"], "gauge": [""], "histogram": ["_bucket", "_sum", "_count"]}
    names = set()
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase):
            names.update(metric._name + s for s in suffixes[metric._type])
    return names


def test_dashboard_queries_only_metrics_tradebus_exports():
    dashboard = json.loads((ROOT / "infra" / "grafana" / "tradebus-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {name for expr in exprs for name in re.findall(r"\b(tradebus_[a-z_]+)\{", expr)}
    assert used, "the dashboard queries no tradebus metric"
    assert used <= _exported_series_names()


@pytest.mark.parametrize("values_file", ["values.yaml", "ci/all-on-values.yaml"])
def test_chart_alert_rules_load(values_file):
    from consumers.alerts.rules import parse_rules

    rules = yaml.safe_load((CHART / values_file).read_text())["workers"]["alerts"]["rules"]
    assert parse_rules(rules, values_file).rules


def test_chart_sets_only_environment_variables_the_application_reads():
    templates = "\n".join(p.read_text() for p in (CHART / "templates").iterdir())
    chart_env = set(re.findall(r"name: (TRADEBUS_[A-Z0-9_]+)", templates))
    sources = "\n".join(p.read_text() for d in ("tradebus", "producers", "consumers")
                        for p in (ROOT / d).rglob("*.py"))
    read = set(re.findall(r'"(TRADEBUS_[A-Z0-9_]+)"', sources))
    # Read by prefix: librdkafka pass-through (TRADEBUS_KAFKA_SASL_*, _SSL_*; docs/CONVENTIONS.md)
    # and the alerts worker's TRADEBUS_ALERTS_SMTP_* settings.
    prefixes = ("TRADEBUS_KAFKA_SASL_", "TRADEBUS_KAFKA_SSL_", "TRADEBUS_ALERTS_SMTP_")
    passthrough = {n for n in chart_env if n.startswith(prefixes)}
    assert chart_env - passthrough <= read
