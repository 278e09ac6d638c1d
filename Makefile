# The two commands of the README: `make run` and `make test`.
# Both create .venv with the machine's python3 (>= 3.11) on first use; no manual step.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-stamp

.PHONY: run test check screenshots bench clean

# pip is silent (-q) and takes a minute or two the first time: say so before it starts.
$(STAMP): pyproject.toml setup.py dicomtui/core/_scan.c
	@if [ -d $(VENV) ]; then echo "updating $(VENV) (pyproject.toml or the C extension changed) ..."; \
	else echo "installing into $(VENV) (first run; a minute or two) ..."; fi
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

# Every benchmark in turn (a missing one, e.g. not merged yet, is listed as MISSING), then one table of the
# targets (issues 15-20) gathered from their `TARGET |` lines (also in bench/out/targets.txt).
BENCHES = bench/import_bench.py bench/load_bench.py bench/store_bench.py bench/move_bench.py bench/tui_bench.py \
          bench/export_bench.py bench/edit_bench.py bench/dicomweb_bench.py bench/deid_bench.py \
          bench/deid_mapping_bench.py bench/patch_bench.py bench/rtstruct_bench.py bench/overlay_bench.py

bench: $(STAMP)
	$(BIN)/python bench/summary.py $(BENCHES)

clean:
	rm -rf $(VENV) .pytest_cache
