# Shipyard: `make demo` runs the whole lifecycle for real; `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck imports unit bench clean browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/shipyard demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# import-linter contracts in pyproject.toml (indirect imports included)
imports: $(STAMP)
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest -q

# The dashboard's tests drive Debian's Chromium through chromedriver (never a downloaded browser).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		(apt-get update -q && apt-get install -y -q chromium chromium-driver) || \
		echo "could not install chromium: the browser tests will be skipped (CI fails them)"

test: browser lint typecheck imports unit

bench: $(STAMP)
	$(BIN)/python bench/record.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
