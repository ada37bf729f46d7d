# Entry points of botfleet.pm2. `make test` and `make demo` install what
# they need: the virtualenv, the Docker engine and the test host images.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PYTHON ?= python3
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/collections
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PY_COLORS := 0
export ANSIBLE_FORCE_COLOR := 0

SCENARIOS := $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml)))

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Create the virtualenv from requirements.txt

.PHONY: docker
docker: ## Install and start the Docker engine when it is missing
	tests/scripts/ensure-docker.sh

.PHONY: images
images: docker ## Build the Debian 12 and 13 test host images unless cached
	tests/images/build.sh

.PHONY: lint
lint: venv ## Run yamllint, ansible-lint and ruff
	yamllint --strict .
	ansible-lint
	ruff check .
	ruff format --check .

.PHONY: unit
unit: venv ## Run the unit tests
	pytest tests/unit

.PHONY: build
build: venv ## Build the collection tarball
	ansible-galaxy collection build --force --output-path .cache/build .

.PHONY: molecule
molecule: venv images ## Run every Molecule scenario
	@for scenario in $(SCENARIOS); do \
	  echo "== molecule test -s $$scenario"; \
	  molecule test -s $$scenario; \
	done

.PHONY: test
test: lint unit build molecule ## Run every check: lint, unit tests, build, Molecule

.PHONY: docs
docs: venv ## Regenerate the variable tables of the role READMEs
	$(BIN)/python tests/scripts/role_readme.py --write

.PHONY: clean
clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache

.PHONY: demo
demo: venv ## Provision and deploy the example bots onto a local SSH test host
	examples/demo/demo.sh up

.PHONY: demo-clean
demo-clean: ## Remove the demo host
	examples/demo/demo.sh down

$(VENV)/.bench-installed: $(VENV)/.installed bench/requirements.txt
	$(BIN)/pip install --quiet -r bench/requirements.txt
	touch $@

.PHONY: bench
bench: $(VENV)/.bench-installed ## Benchmark deploy.yml against a plain SSH script (BENCH_RUNS=5)
	$(BIN)/python bench/bench.py all

.PHONY: bench-clean
bench-clean: ## Remove the benchmark host and its work folder
	$(BIN)/python bench/bench.py down
