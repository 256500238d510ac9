# Two commands do all set-up on a fresh machine with Python 3.11+: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test test-fast test-e2e lint check once bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run  ## poll, match and deliver with config/ (starts a private Redis if none answers)
	ALERTS_CONFIG=$${ALERTS_CONFIG:-config} $(BIN)/alerts run

once: $(VENV)/.installed-run  ## poll every feed once and deliver
	ALERTS_CONFIG=$${ALERTS_CONFIG:-config} $(BIN)/alerts once

test: $(VENV)/.installed-test  ## the test suite (starts a private Redis; TEST_REDIS_URL to use another)
	$(BIN)/python -m pytest

test-fast: $(VENV)/.installed-test  ## the fast tier: every test but the end-to-end ones (no subprocesses)
	$(BIN)/python -m pytest -m "not e2e"

test-e2e: $(VENV)/.installed-test  ## the end-to-end tier: the service, workers and CLI as subprocesses
	$(BIN)/python -m pytest -m e2e

lint: $(VENV)/.installed-test  ## ruff, strict mypy and the import contracts of pyproject.toml
	$(BIN)/ruff check alerts workers tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

check: lint test

bench: $(VENV)/.installed-test  ## performance figures (see bench/)
	$(BIN)/python bench/latency.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
