# smartmeter — the two commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help install demo test test-unit test-integration test-e2e lint bench services \
        services-down system-deps clean

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 18

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "smartmeter needs Python 3.11+; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project with everything it needs

demo: install  ## run the live pipeline on embedded defaults; dashboard on http://127.0.0.1:8866
	$(VENV)/bin/smartmeter demo

system-deps:  ## install what the tests need from Debian (chromium, redis, Java 17, Maven)
	@bash tools/system-deps.sh

test: install system-deps  ## all test tiers: unit, contract, integration (real services), e2e
	$(PY) -m pytest --doctest-modules smartmeter_lib tests $(PYTEST_ARGS)

test-unit: install  ## the fast tier, no services
	$(PY) -m pytest -m unit --doctest-modules smartmeter_lib tests $(PYTEST_ARGS)

test-integration: install system-deps  ## real Kafka, Cassandra and Redis
	$(PY) -m pytest -m integration tests $(PYTEST_ARGS)

test-e2e: install system-deps  ## the browser and papermill tier
	$(PY) -m pytest -m e2e tests $(PYTEST_ARGS)

lint: install  ## ruff and mypy
	$(VENV)/bin/ruff check smartmeter_lib tests
	$(VENV)/bin/mypy smartmeter_lib

BENCH_DIR ?= /tmp/smartmeter-bench
BENCH_PORT_OFFSET ?= 0
BENCH_ARGS ?=

bench: install system-deps  ## measure: embedded pipeline, then the real stack (own services); see docs/benchmarks.md
	@echo "machine: $$(nproc) cores, $$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $$(free -g | awk '/Mem:/{print $$2}') GiB; load average: $$(cut -d' ' -f1-3 /proc/loadavg)"
	$(VENV)/bin/smartmeter bench --homes 10000 --seconds 60
	$(VENV)/bin/smartmeter bench --homes 100000 --seconds 20
	$(VENV)/bin/smartmeter bench --processor --homes 10000 --seconds 60
	$(VENV)/bin/smartmeter bench --processor --homes 100000 --seconds 20
	$(VENV)/bin/smartmeter bench-stack --base-dir $(BENCH_DIR) --port-offset $(BENCH_PORT_OFFSET) \
		--output $(BENCH_DIR)/bench-stack.json $(BENCH_ARGS)
	@echo "load average at the end: $$(cut -d' ' -f1-3 /proc/loadavg)"

services: install system-deps  ## start local Kafka (3 brokers), Cassandra and Redis
	$(VENV)/bin/smartmeter services up

services-down: install  ## stop the local services
	$(VENV)/bin/smartmeter services down

clean:  ## remove the virtualenv, caches and local data (not the jar cache)
	rm -rf $(VENV) .smartmeter test-output .pytest_cache .mypy_cache .ruff_cache *.egg-info
