# senti — developer entry points. `make up` runs the system, `make test` checks everything.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.senti-installed
STORE  ?= sqlite:///data/senti.db

.PHONY: setup up test test-deps lint typecheck pytest clean

setup: $(STAMP)

# Idempotent: the venv is (re)built only when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet --editable . --group dev
	touch $(STAMP)

up: setup
	mkdir -p data
	$(BIN)/senti up --source synthetic --rate 20 --window 10 --dev --store $(STORE)

test: setup test-deps lint typecheck pytest

# System packages the tests drive for real: Debian's Chromium (browser tests) and
# openssl (certificates for the TLS test). Installed only when missing.
test-deps:
	@command -v chromium >/dev/null && command -v openssl >/dev/null || { \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium openssl; }

lint: setup
	$(BIN)/ruff check flows server dashboard tests bench
	$(BIN)/ruff format --check flows server dashboard tests bench

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) data .mypy_cache .ruff_cache .pytest_cache
