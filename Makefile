# Postwire developer tasks. CI runs `make test` (through .ci/run).
#   make venv       .venv with the exact pins of requirements.lock, plus the SDK and the service (editable)
#   make services   start PostgreSQL, Redis and RabbitMQ on loopback if they are not running
#   make generate   regenerate gen/ from protos/ with buf
#   make docs       regenerate docs/settings.md and docs/api.md (from core/settings.py and protos/)
#   make contracts  buf lint, format, breaking (vs HEAD~1) and "gen/ is up to date"
#   make test       venv + services + contracts + test tools (Mail::DKIM), then the whole suite: 2 xdist workers, then chaos alone (PYTEST_ARGS=... runs just those)
#   make dev        run the local stack (postwire dev)
#   make lint       quick syntax checks
#   make bench      run the benchmarks, write bench/results/latest.md
#   make bench-stats  GetStats and the stats rollup at 1,000,000 emails (bench/stats.py; also part of make bench)
#   make chaos-soak broker restart, database restart, server kill 10 times each; prints the ledger (not in CI)
#   make chaos-peak the chaos ledger at the measured peak accept rate (CHAOS_RATE=R to give it; not in CI)

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
STAMP  := $(VENV)/.installed
PYTHON ?= $(shell command -v python3.11 || command -v python3)
BUFENV := PATH="$(CURDIR)/$(VENV)/bin:$$PATH"
PYTEST_ARGS ?=

.PHONY: help venv services generate docs contracts test dev lint bench bench-tracking bench-stats chaos-soak chaos-peak

help:
	@sed -n 's/^#   //p' $(MAKEFILE_LIST)

venv: $(STAMP)

# On a fresh Debian, `python3 -m venv` fails until python3-venv (ensurepip) is installed.
$(STAMP): requirements.lock pyproject.toml clients/python/pyproject.toml
	[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV) && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv </dev/null && \
	  $(PYTHON) -m venv $(VENV); }
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.lock
	$(VENV)/bin/pip install -q --no-deps -e clients/python -e .
	touch $@

services:
	bash scripts/ensure-services.sh

generate: venv
	$(BUFENV) buf generate --clean

docs: venv
	$(BUFENV) $(VENV)/bin/python tools/gen_docs.py

contracts: venv
	bash scripts/check-contracts.sh

# scripts/run-tests.sh: all but tests/chaos on TEST_WORKERS xdist workers, then tests/chaos alone.
test: venv services contracts
	bash scripts/ensure-test-tools.sh
	bash scripts/run-tests.sh $(PYTEST_ARGS)

dev: venv
	$(VENV)/bin/postwire dev

lint: venv
	bash -n scripts/*.sh .ci/run
	$(BUFENV) buf lint
	$(VENV)/bin/python -m compileall -q $(wildcard core server workers postwire_service clients tools tests bench)

bench: venv
	bash scripts/ensure-services.sh --with-postfix
	$(VENV)/bin/python bench/run_all.py

bench-tracking: venv  # one of run_all's lines alone: tracking hits through Envoy, rewrite cost
	$(VENV)/bin/python bench/tracking.py
bench-stats: venv
	bash scripts/ensure-services.sh --with-postfix
	$(VENV)/bin/python bench/stats.py

CHAOS_ROUNDS ?= 10
chaos-soak: venv services
	CHAOS_FAULTS=rabbitmq-restart,postgres-restart,server-sigkill CHAOS_ROUNDS=$(CHAOS_ROUNDS) \
	  $(VENV)/bin/pytest tests/chaos -q

chaos-peak: venv services
	$(VENV)/bin/python bench/ledger_peak.py $(if $(CHAOS_RATE),--rate $(CHAOS_RATE))
