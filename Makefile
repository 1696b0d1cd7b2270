# The two commands a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-fast lint install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/smbc demo

# The layers (import-linter contracts in pyproject.toml) and ruff first: a broken layer is a failed test.
test: $(STAMP) lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# While developing: everything but the benchmarks, the demo command and the kill tests (CI runs them).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

LINT_PATHS := src tests tools $(wildcard benchmarks)

lint: $(STAMP)
	$(BIN)/lint-imports --no-cache
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

clean:
	rm -rf $(VENV) var .pytest_cache
