# Two commands do all set-up on a fresh machine with Python 3.11+: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run demo test test-fast test-e2e lint check once bench clean lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# the versions CI tested, hash-checked (requirements*.lock, from `make lock`), then the project itself
$(VENV)/.installed-run: pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml requirements-test.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-test.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@ $(VENV)/.installed-run

lock: | $(BIN)/python  ## re-pin requirements*.lock (with hashes) after a change of pyproject.toml
	$(PYTHON) -m venv .venv-lock && .venv-lock/bin/pip install --quiet pip-tools
	.venv-lock/bin/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe \
		--no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml
	.venv-lock/bin/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe \
		--no-emit-index-url --no-emit-find-links --extra test -o requirements-test.lock pyproject.toml
	rm -rf .venv-lock

run: $(VENV)/.installed-run  ## poll, match and deliver with config/ (starts a private Redis if none answers)
	ALERTS_CONFIG=$${ALERTS_CONFIG:-config} $(BIN)/alerts run

demo: $(VENV)/.installed-run  ## a local newsroom and the service: alerts on this terminal, no account, no network
	$(BIN)/alerts demo

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
