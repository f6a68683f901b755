"""Validate rendered Helm manifests offline, then check the chart's own rules.

    python validate_manifests.py --kubernetes-version 1.34.0 manifests.yaml...

1. Schema: built-in kinds against the Kubernetes JSON schemas shipped with the
   kubernetes-validate package (strict: unknown fields fail); the custom kinds
   (Strimzi KafkaTopic, ServiceMonitor) against the subset schemas in
   crd-schemas/. A kind without a schema is an error, not a warning.
2. Rules the chart promises (docs in infra/helm/README.md): singleton
   producers, a PDB per worker and none for the singletons, probes, grace
   period, security context, secrets only from Secrets, one credential per producer.

Exit status 0 when everything passes, 1 otherwise. Runs in the tools venv
that infra/k8s-validate.sh creates (kubernetes-validate, jsonschema, PyYAML).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import yaml

CRD_SCHEMA_DIR = Path(__file__).resolve().parent / "crd-schemas"
CRD_SCHEMAS = {
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"): "kafkatopic-kafka.strimzi.io-v1beta2.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor-monitoring.coreos.com-v1.json",
}
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")
# Environment variables that hold secrets: never a literal value in a manifest.
SECRET_ENV_SUFFIXES = ("_PASSWORD", "_API_KEY", "_API_CODE", "_USER_INFO", "_DATABASE_URL", "_WEBHOOK_URL")


def name_of(doc: dict) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def schema_errors(doc: dict, k8s_version: str) -> list[str]:
    # Imported here: the chart rules below need only PyYAML (tests/infra use them).
    import jsonschema
    from kubernetes_validate import utils as kv

    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in CRD_SCHEMAS:
        schema = json.loads((CRD_SCHEMA_DIR / CRD_SCHEMAS[key]).read_text())
        validator = jsonschema.Draft7Validator(schema)
        return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(doc)]
    try:
        kv.validate(doc, k8s_version, strict=True)
    except kv.ValidationError as exc:
        return [f"{'.'.join(map(str, exc.path)) or '<root>'}: {exc.message}"]
    except kv.SchemaNotFoundError as exc:
        return [f"no schema: {exc.message}"]
    return []


def pod_spec(doc: dict) -> dict:
    return doc["spec"]["template"]["spec"]


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def selects(selector: dict, labels: dict) -> bool:
    match = selector.get("matchLabels", {})
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


def rule_errors(docs: list[dict]) -> list[str]:
    errors: list[str] = []

    def fail(doc: dict, message: str) -> None:
        errors.append(f"{name_of(doc)}: {message}")

    workloads = [d for d in docs if d["kind"] in WORKLOAD_KINDS]
    pdbs = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    credentials: dict[tuple[str, str], str] = {}

    for doc in workloads:
        spec = pod_spec(doc)
        labels = doc["spec"]["template"]["metadata"].get("labels", {})
        if spec.get("automountServiceAccountToken") is not False:
            fail(doc, "automountServiceAccountToken must be false")
        psc = spec.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True or psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            fail(doc, "pod securityContext needs runAsNonRoot and seccompProfile RuntimeDefault")
        tmp_volumes = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        for c in spec["containers"]:
            sc = c.get("securityContext", {})
            if not (sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
                    and "ALL" in sc.get("capabilities", {}).get("drop", [])):
                fail(doc, f"container {c['name']}: needs readOnlyRootFilesystem, no privilege escalation, drop ALL")
            res = c.get("resources", {})
            if not all(res.get(part, {}).get(kind) for part in ("requests", "limits") for kind in ("cpu", "memory")):
                fail(doc, f"container {c['name']}: cpu and memory requests and limits are required")
            if not any(m["mountPath"] == "/tmp" and m["name"] in tmp_volumes for m in c.get("volumeMounts", [])):
                fail(doc, f"container {c['name']}: /tmp must be an emptyDir (read-only root filesystem)")
            env = env_of(c)
            for name, var in env.items():
                if name.endswith(SECRET_ENV_SUFFIXES) and "value" in var:
                    fail(doc, f"{name} is a secret: it must come from a Secret (valueFrom), not a literal")

            if doc["kind"] == "Job":
                continue
            probes = {p: c.get(p, {}).get("httpGet", {}).get("path") for p in ("livenessProbe", "readinessProbe")}
            if probes != {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}:
                fail(doc, f"probes must be liveness /healthz and readiness /readyz, got {probes}")
            shutdown = float(env.get("TRADEBUS_SHUTDOWN_TIMEOUT_SECONDS", {}).get("value", 30))
            if not spec.get("terminationGracePeriodSeconds", 30) > shutdown:
                fail(doc, "terminationGracePeriodSeconds must exceed TRADEBUS_SHUTDOWN_TIMEOUT_SECONDS")

        covering = [p for p in pdbs if selects(p["spec"]["selector"], labels)]
        if doc["kind"] == "StatefulSet":
            if doc["spec"].get("replicas") != 1:
                fail(doc, "a producer StatefulSet runs exactly one replica")
            if covering:
                fail(doc, f"no PodDisruptionBudget may cover a singleton producer (found {name_of(covering[0])})")
            env = env_of(spec["containers"][0])
            if "value" not in env.get("TRADEBUS_INSTANCE_ID", {}):
                fail(doc, "TRADEBUS_INSTANCE_ID must be set to the instance name")
            for name in ("TRADEBUS_HTI_API_CODE", "TRADEBUS_ANTHID_API_KEY"):
                ref = env.get(name, {}).get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    key = (ref["name"], ref["key"])
                    if key in credentials:
                        fail(doc, f"credential {key} is also used by {credentials[key]}")
                    credentials[key] = name_of(doc)
        elif doc["kind"] == "Deployment":
            if len(covering) != 1 or covering[0]["spec"].get("maxUnavailable") != 1:
                fail(doc, "a worker Deployment needs exactly one PodDisruptionBudget with maxUnavailable: 1")
    return errors


def problems_of(docs: list[dict], k8s_version: str) -> list[str]:
    problems = [f"{name_of(d)}: {e}" for d in docs for e in schema_errors(d, k8s_version)]
    return problems + rule_errors(docs)


def _first(docs: list[dict], kind: str) -> dict | None:
    return next((d for d in docs if d["kind"] == kind), None)


def _container(doc: dict) -> dict:
    return pod_spec(doc)["containers"][0]


def _set_env(doc: dict, name: str, var: dict) -> None:
    env = _container(doc).setdefault("env", [])
    env[:] = [e for e in env if e["name"] != name] + [{"name": name, **var}]


# Breakages the checks above must catch: (description, kind it needs, mutation).
MUTATIONS = [
    ("unknown field in a Deployment", "Deployment", lambda docs, d: d["spec"].update(bogus=1)),
    ("wrong type in a container port", "Deployment",
     lambda docs, d: _container(d)["ports"][0].update(containerPort="9400")),
    ("unknown field in a KafkaTopic", "KafkaTopic", lambda docs, d: d["spec"].update(partition=6)),
    ("ServiceMonitor without endpoints", "ServiceMonitor", lambda docs, d: d["spec"].pop("endpoints")),
    ("a producer with two replicas", "StatefulSet", lambda docs, d: d["spec"].update(replicas=2)),
    ("a PDB over a producer", "StatefulSet", lambda docs, d: docs.append({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "x"},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": d["spec"]["selector"]["matchLabels"]}}})),
    ("two producers on one credential", "StatefulSet", lambda docs, d: docs.append(copy.deepcopy(d))),
    ("a worker without its PDB", "Deployment",
     lambda docs, d: docs.remove(next(p for p in docs if p["kind"] == "PodDisruptionBudget"))),
    ("a secret as a literal value", "Deployment",
     lambda docs, d: _set_env(d, "TRADEBUS_KAFKA_SASL_PASSWORD", {"value": "hunter2"})),
    ("a writable root filesystem", "Job",
     lambda docs, d: _container(d)["securityContext"].update(readOnlyRootFilesystem=False)),
    ("liveness on /readyz", "Deployment",
     lambda docs, d: _container(d)["livenessProbe"]["httpGet"].update(path="/readyz")),
    ("grace period not above the shutdown timeout", "Deployment",
     lambda docs, d: pod_spec(d).update(terminationGracePeriodSeconds=30)),
    ("no resource limits", "StatefulSet", lambda docs, d: _container(d)["resources"].pop("limits")),
]


def self_test(docs: list[dict], k8s_version: str) -> list[str]:
    """Apply each mutation to a copy of valid docs; each must be reported."""
    missed = []
    for description, kind, mutate in MUTATIONS:
        mutated = copy.deepcopy(docs)
        target = _first(mutated, kind)
        if target is None:
            continue
        mutate(mutated, target)
        if not problems_of(mutated, k8s_version):
            missed.append(description)
    return missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubernetes-version", required=True)
    parser.add_argument("--self-test", action="store_true",
                        help="also check that known breakages of these manifests are caught")
    parser.add_argument("manifests", nargs="+", type=Path)
    args = parser.parse_args(argv)
    failed = False
    for path in args.manifests:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        problems = problems_of(docs, args.kubernetes_version)
        kinds = sorted({d["kind"] for d in docs})
        if problems:
            failed = True
            print(f"FAIL {path}: {len(problems)} problem(s)")
            for problem in problems:
                print(f"  {problem}")
        else:
            print(f"ok   {path}: {len(docs)} resources ({', '.join(kinds)}) valid for Kubernetes "
                  f"{args.kubernetes_version}, chart rules hold")
        if args.self_test and not problems:
            missed = self_test(docs, args.kubernetes_version)
            if missed:
                failed = True
                print(f"FAIL {path}: self-test: not caught: {'; '.join(missed)}")
            else:
                print(f"ok   {path}: self-test: every known breakage is caught")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
