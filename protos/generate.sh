#!/usr/bin/env bash
# Generates the Python stubs of contract C into build/gen (git-ignored).
# Called by `make protos`. Override the output with TRADEBUS_GEN_DIR, the
# interpreter with PYTHON (default: the repo venv if present).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${TRADEBUS_GEN_DIR:-build/gen}"
py="${PYTHON:-}"
if [ -z "$py" ]; then
  if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
fi
rm -rf "$out/trading"
mkdir -p "$out/trading"
"$py" -m grpc_tools.protoc -I protos \
  --python_out="$out" --grpc_python_out="$out" --pyi_out="$out" \
  protos/trading/*.proto
# Generated modules import each other as `trading.<name>_pb2`.
touch "$out/trading/__init__.py"
echo "protobuf stubs written to $out/trading"
