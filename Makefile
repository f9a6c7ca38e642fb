# The two commands of the README: `make demo` and `make test`.
# Each sets itself up on a fresh machine (Python 3.11+ is all it needs).

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test lint typecheck install-dev bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# A stamp per dependency set, so `make` reinstalls when pyproject.toml changes.
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install-dev: $(VENV)/.installed-dev

demo: install-dev
	$(BIN)/numbers-etl demo

lint: install-dev
	$(BIN)/ruff check etl tests benchmarks
	$(BIN)/ruff format --check etl tests benchmarks

typecheck: install-dev
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/python -m pytest --doctest-modules etl tests

bench: install-dev
	$(BIN)/python benchmarks/bench_sync.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
