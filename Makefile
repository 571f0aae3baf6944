# senti — developer entry points. `make up` runs the system, `make test` checks everything.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.senti-installed
STORE  ?= sqlite:///data/senti.db
TRACK  ?= --track python --track "\#worldcup" --track "climate change" --track coffee

.PHONY: setup up test lint typecheck pytest clean

setup: $(STAMP)

# Idempotent: the venv is (re)built only when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet --editable . --group dev
	touch $(STAMP)

up: setup
	mkdir -p data
	$(BIN)/senti run --source synthetic --rate 50 --window 10 $(TRACK) --store $(STORE)

test: setup lint typecheck pytest

lint: setup
	$(BIN)/ruff check flows server dashboard tests bench
	$(BIN)/ruff format --check flows server dashboard tests bench

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) data .mypy_cache .ruff_cache .pytest_cache
