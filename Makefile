# tradebus: every target does its own set-up, so `make test` and `make demo`
# work on a fresh machine.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
STACK := bash infra/local/stack.sh
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: setup venv up down status protos test test-unit test-integration demo bench k8s-validate clean topics e2e

setup: venv protos
	$(STACK) setup

venv: $(STAMP)
$(STAMP): pyproject.toml requirements.lock
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c requirements.lock -e ".[dev]"
	@touch $(STAMP)

# The `bench` extra (matplotlib for the report's plots), only for `make bench`.
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -q -c requirements.lock -e ".[dev,bench]"
	@touch $(BENCH_STAMP)

protos: $(STAMP)
	bash protos/generate.sh

up:
	$(STACK) up

down:
	$(STACK) down

status:
	@$(STACK) status

topics: setup up
	$(VENV)/bin/tradebus topics create

# The full end-to-end fault suite (tests marked slow) runs with `make e2e`.
test: setup up
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-unit: venv protos
	$(PY) -m pytest tests/unit tests/infra $(PYTEST_ARGS)

test-integration: setup up
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

e2e: setup up
	$(PY) -m pytest tests/e2e tests/security $(PYTEST_ARGS)

demo: setup up
	$(VENV)/bin/tradebus demo $(DEMO_ARGS)

# Every benchmark in one go (about 7 minutes) -> bench/results/REPORT.md with figures and plots;
# BENCH_ARGS="NAME ..." runs a subset (names in bench/run_all.py).
bench: setup up $(BENCH_STAMP)
	$(PY) -m bench.run_all $(BENCH_ARGS)

k8s-validate:
	bash infra/k8s-validate.sh

clean:
	rm -rf build .pytest_cache
