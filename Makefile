# The two commands of the README: `make run` and `make test`.
# Both create .venv with the machine's python3 (>= 3.11) on first use; no manual step.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-stamp

.PHONY: run test check screenshots bench clean

$(STAMP): pyproject.toml setup.py dicomtui/core/_scan.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/dicomtui $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

# Static checks (CI runs them before the tests): ruff on everything, mypy on the core, import-linter's layers.
check: $(STAMP)
	$(BIN)/ruff check dicomtui tests bench screenshots
	$(BIN)/mypy
	$(BIN)/lint-imports

screenshots: $(STAMP)
	$(BIN)/python screenshots/make_screenshots.py

bench: $(STAMP)
	$(BIN)/python bench/import_bench.py
	$(BIN)/python bench/load_bench.py
	$(BIN)/python bench/store_bench.py
	$(BIN)/python bench/move_bench.py
	$(BIN)/python bench/tui_bench.py

clean:
	rm -rf $(VENV) .pytest_cache
