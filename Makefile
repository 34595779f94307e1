# Every target bootstraps .venv on a fresh machine that has only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/perpdesk $(ARGS)

test: $(STAMP)
	$(BIN)/ruff check engine tui themes tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check engine tui themes tests bench
	$(BIN)/ruff format --check engine tui themes tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/book.py
	$(BIN)/python bench/backtest.py
	$(BIN)/python bench/soak.py
	$(BIN)/python bench/ui.py
	$(BIN)/python bench/signing.py
	$(BIN)/python bench/exchange.py
	$(BIN)/python bench/hl_signing.py
	$(BIN)/python bench/hl_feed.py
	$(BIN)/python bench/hl_venue.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
