# Quick start: `make demo` and `make test`. Both create .venv (and reinstall
# .[dev] into it) when it is missing or older than pyproject.toml.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.xbarlab-installed

export QT_QPA_PLATFORM := offscreen

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "xbarlab needs Python >= 3.10; set PYTHON=/path/to/python3.10+")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/xbarlab demo

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_emulator.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name '*.nb[ic]' -print | xargs rm -f
