# mlops-template — developer front door.  Only python3 (3.10+) and make are assumed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# uv is installed into the venv when possible (fast, cached); pip is the fallback.
install = if [ -x $(BIN)/uv ]; then VIRTUAL_ENV=$(abspath $(VENV)) $(BIN)/uv pip install -q --compile-bytecode $(1); \
	else $(BIN)/python -m pip install -q $(1); fi
DEMO_DIR ?= demo-project
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv dev demo test test-fast lint typecheck format bench clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "mlops-template needs Python 3.10+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	-$(BIN)/python -m pip install -q uv

venv: $(BIN)/python

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(call install,-e '.[dev]')
	$(BIN)/python -m compileall -q src
	touch $@

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(call install,-e .)
	$(BIN)/python -m compileall -q src
	touch $@

dev: $(VENV)/.installed-dev ## install the tool with its dev extras into .venv

demo: $(VENV)/.installed ## scaffold examples/churn into ./demo-project and run it
	$(BIN)/python scripts/demo.py --dest $(DEMO_DIR)

# --durations: the CI log names the slowest tests and fixtures (the suite must stay well under 15
# minutes on 2 cores; docs/benchmarks.md "Suite time")
test: $(VENV)/.installed-dev ## run the whole suite (unit, CLI, matrix, golden, baked projects)
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=25 $(PYTEST_ARGS)

test-fast: $(VENV)/.installed-dev ## the suite without the slow baked-project tests
	$(BIN)/python -m pytest -n 2 --dist loadgroup -m 'not slow' $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev ## ruff and mypy on the tool itself
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

format: $(VENV)/.installed-dev
	$(BIN)/ruff format src tests benchmarks scripts
	$(BIN)/ruff check --fix src tests benchmarks scripts

bench: $(VENV)/.installed-dev ## timing scripts against the peer tools (see benchmarks/README.md)
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/new.py
	$(BIN)/python benchmarks/lint.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) build dist .pytest_cache .mypy_cache .ruff_cache
