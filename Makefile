# e-Meuse santé event platform: the front door. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(VENV)/bin/python
BUF     := node_modules/.bin/buf
STAMP   := .local/stamps

.PHONY: help install proto proto-check docs lint format kafka-up kafka-down topics up down status \
        test test-unit test-integration chaos bench demo clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

install: $(STAMP)/system $(STAMP)/python $(STAMP)/node $(STAMP)/kafka-jars ## install what is missing (system tools, venv, buf, Kafka jars)

$(STAMP)/python: pyproject.toml constraints.txt | $(STAMP)/system
	@mkdir -p $(STAMP)
	test -x $(PY) || python3.11 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

$(STAMP)/node: package.json package-lock.json | $(STAMP)/system
	@mkdir -p $(STAMP)
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(STAMP)/kafka-jars: deploy/kafka/pom.xml | $(STAMP)/system
	@mkdir -p $(STAMP)
	deploy/kafka/kafka.sh jars
	@touch $@

$(STAMP)/system:
	@mkdir -p $(STAMP)
	scripts/install-system.sh
	@touch $@

proto: $(STAMP)/python ## regenerate libs/ from proto/ (commit the result)
	scripts/proto.sh gen

proto-check: $(STAMP)/python ## fail when generated code differs from `make proto`
	scripts/proto.sh check

docs: $(STAMP)/python ## regenerate docs/catalogue.md and docs/settings.md from the code (commit them)
	$(PY) scripts/catalogue.py
	$(PY) scripts/settings_table.py

lint: install proto-check ## ruff, mypy, buf lint + breaking, catalogue and settings drift, promtool, shell syntax
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(BUF) lint
	$(BUF) format --diff --exit-code proto
	scripts/buf-breaking.sh
	$(PY) scripts/catalogue.py --check
	$(PY) scripts/settings_table.py --check
	cd deploy/prometheus && promtool check config prometheus.yml >/dev/null && promtool test rules rules_test.yml >/dev/null
	bash -n deploy/kafka/kafka.sh deploy/local/platform.sh scripts/*.sh .ci/run

format: $(STAMP)/python ## ruff format and fix in place
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

kafka-up: $(STAMP)/python $(STAMP)/kafka-jars ## start the local KRaft broker on 127.0.0.1:9092
	deploy/kafka/kafka.sh up

kafka-down: ## stop the local broker
	deploy/kafka/kafka.sh down

topics: kafka-up ## create the registry's topics (idempotent)
	$(VENV)/bin/emeuse topics create

up: install ## run Kafka, the topics, the services and Prometheus
	deploy/local/platform.sh up

down: ## stop everything `make up` started
	deploy/local/platform.sh down

status: ## what runs and where
	deploy/local/platform.sh status

test: install ## unit, contract and integration tests (starts the broker it needs, stops it after)
	scripts/test.sh

test-unit: $(STAMP)/python ## tests that need no broker
	$(VENV)/bin/pytest -q tests/unit tests/contract

chaos: install ## seeded fault rounds on a broker of its own (CHAOS_ARGS="--rounds 20 --seed 1")
	scripts/chaos.sh

bench: install ## speed benchmarks (not part of make test)
	scripts/bench.sh

demo: up ## run the platform, then a 1-minute simulated Meuse; prints where to look (DEMO_ARGS="--seed 2")
	scripts/demo.sh

clean: down ## stop everything and remove local state (.local/)
	rm -rf .local
