# e-Meuse santé event platform: the front door. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(VENV)/bin/python
BUF     := node_modules/.bin/buf
STAMP   := .local/stamps

.PHONY: help install proto proto-check schemas-release schemas-java docs manifests dashboards images demo lint format kafka-up kafka-down kafka-cluster-up kafka-cluster-down topics up down status \
        test test-unit test-integration chaos bench clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

install: $(STAMP)/system $(STAMP)/python $(STAMP)/node $(STAMP)/kafka-jars ## install what is missing (system tools, venv, npm packages, Kafka jars)

$(STAMP)/python: pyproject.toml constraints.txt | $(STAMP)/system
	@mkdir -p $(STAMP)
	test -x $(PY) || python3.11 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

# The npm workspaces (sdk/typescript, examples/typescript_partner) install with the tools.
$(STAMP)/node: package.json package-lock.json sdk/typescript/package.json examples/typescript_partner/package.json | $(STAMP)/system
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

proto: $(STAMP)/python $(STAMP)/node ## regenerate libs/, sdk/typescript/gen/ and sdk/go/ from proto/ (commit the result)
	scripts/proto.sh gen

proto-check: $(STAMP)/python $(STAMP)/node ## fail when generated code differs from `make proto`
	scripts/proto.sh check

# The jar is built, not committed; `mvn install` puts it in ~/.m2 for a Java project to depend on.
schemas-java: $(STAMP)/system ## build and install sdk/java/target/emeuse-schemas-<version>.jar (Maven, protoc from Maven Central)
	mvn -q -B -f sdk/java/pom.xml install

schemas-release: $(STAMP)/node ## write sdk/descriptors/ for the schemas version in sdk/typescript/package.json (docs/schema-changelog.md)
	scripts/proto.sh release

docs: $(STAMP)/python ## regenerate docs/catalogue.md and docs/settings.md from the code (commit them)
	$(PY) scripts/catalogue.py
	$(PY) scripts/settings_table.py

manifests: $(STAMP)/python ## regenerate deploy/k8s/ from the registries, deploy/partners.toml and deploy/cluster.toml (commit it)
	$(VENV)/bin/emeuse deploy render

dashboards: $(STAMP)/python ## regenerate the Grafana dashboards in deploy/grafana/ (commit them)
	$(PY) scripts/dashboards.py

IMAGE       ?= emeuse-platform
IMAGE_TAG   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
BASE_DIGEST ?=
images: ## build the platform image (needs a Docker engine and BASE_DIGEST=sha256:..., see docs/operations.md)
	@if ! docker info >/dev/null 2>&1; then 	  echo "make images: no Docker engine here, skipped (tests/unit/deploy/test_dockerfile.py checks the Dockerfile)"; 	elif [ -z "$(BASE_DIGEST)" ]; then 	  echo "make images: give the vetted base image digest, BASE_DIGEST=sha256:... (docs/operations.md, Image)" >&2; exit 2; 	else 	  docker build --build-arg BASE_DIGEST=$(BASE_DIGEST) -t $(IMAGE):$(IMAGE_TAG) . ; 	fi

lint: install proto-check ## ruff, mypy, buf lint + breaking, catalogue, settings, manifest and dashboard drift, manifest schemas, promtool, shell syntax
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(BUF) lint
	$(BUF) format --diff --exit-code proto
	scripts/buf-breaking.sh
	$(PY) scripts/catalogue.py --check
	$(PY) scripts/settings_table.py --check
	$(VENV)/bin/emeuse deploy render --check
	$(PY) scripts/validate_manifests.py
	$(PY) scripts/dashboards.py --check
	$(PY) -m emeuse.deploy.prometheus --check
	cd deploy/prometheus && promtool check config --syntax-only prometheus.yml >/dev/null && promtool test rules rules_test.yml >/dev/null
	cd deploy/prometheus && promtool test rules operations_rules_test.yml >/dev/null
	bash -n deploy/kafka/kafka.sh deploy/kafka/cluster.sh deploy/local/platform.sh scripts/*.sh .ci/run

format: $(STAMP)/python ## ruff format and fix in place
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

kafka-up: $(STAMP)/python $(STAMP)/kafka-jars ## start the local KRaft broker (SASL_SSL 127.0.0.1:9095, partners 9094)
	deploy/kafka/kafka.sh up

kafka-down: ## stop the local broker
	deploy/kafka/kafka.sh down

kafka-cluster-up: $(STAMP)/python $(STAMP)/kafka-jars ## start a local 3-node KRaft cluster (replication 3; deploy/kafka/cluster.sh env for the services)
	deploy/kafka/cluster.sh up

kafka-cluster-down: ## stop the local 3-node cluster
	deploy/kafka/cluster.sh down

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
