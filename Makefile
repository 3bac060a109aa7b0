# The two commands of the README:
#   make run   - set up, then the short chaos campaign with a verdict table and a report
#   make test  - set up, the fast tier, then the chaos tier (minus slow/soak): what CI runs
# Everything installs into .venv and the cache dir (~/.cache/loomchaos); a second run reuses both.

SHELL  := /bin/bash
PYTHON ?= python3
# The module mirror beside this checkout, where there is one (scripts/goenv.sh).
GOENV  := source scripts/goenv.sh &&
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: test run setup fast chaos lint types venv clean-artifacts sweep

test:
	bash scripts/test.sh

run: venv
	$(GOENV) $(BIN)/loomchaos run

venv: $(BIN)/loomchaos

$(BIN)/loomchaos: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: venv
	$(GOENV) $(BIN)/loomchaos setup

fast: venv
	$(BIN)/pytest

chaos: setup
	$(GOENV) $(BIN)/pytest -m 'chaos and not slow and not soak' --durations=20

lint: venv
	$(BIN)/ruff check chaos tests scripts conftest.py
	$(BIN)/ruff format --check chaos tests scripts conftest.py

types: venv
	$(BIN)/mypy chaos

sweep: venv
	$(BIN)/loomchaos sweep
