# senti — developer entry points. `make up` runs the system, `make test` checks everything.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.senti-installed
STORE  ?= sqlite:///data/senti.db

.PHONY: setup up test test-deps lint typecheck pytest clean bench

setup: $(STAMP)

# Idempotent: the venv is (re)built only when pyproject.toml or the pins change.
# constraints.txt pins every dependency to the versions the tests last passed with.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet --editable . --group dev -c constraints.txt
	touch $(STAMP)

up: setup
	mkdir -p data
	$(BIN)/senti up --source synthetic --rate 20 --window 10 --dev --store $(STORE)

test: setup test-deps lint typecheck pytest

# System packages the tests drive for real: Debian's Chromium (browser tests), openssl
# (certificates for the TLS test), PostgreSQL and Redis server binaries (the tests start
# their own throwaway servers). Installed only when missing.
test-deps:
	@command -v chromium >/dev/null && command -v openssl >/dev/null \
	  && command -v redis-server >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends \
	    chromium openssl postgresql redis-server; }

lint: setup
	$(BIN)/ruff check flows server dashboard tests bench
	$(BIN)/ruff format --check flows server dashboard tests bench

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) data .mypy_cache .ruff_cache .pytest_cache
