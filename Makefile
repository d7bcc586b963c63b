# Quick start: `make demo` and `make test`. Both create .venv (and reinstall
# .[dev] into it) when it is missing or older than pyproject.toml.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.xbarlab-installed

export QT_QPA_PLATFORM := offscreen

.PHONY: demo test lint bench screenshots clean

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

# The README's GUI screenshots, drawn offscreen from real runs on an emulated chip.
SHOT_SPEC  := emulator:pcm?rows=128&cols=128&seed=1
SHOT_STORE := build/screenshots.sqlite
SHOT       := $(BIN)/xbarlab gui --backend '$(SHOT_SPEC)' --store $(SHOT_STORE)
# training: a short mixed-precision run on the PCM `xbarlab train` defaults to
TRAIN_SPEC := emulator:pcm?differential=1&seed=1
TRAIN_SHOT := -p mode=mixed-precision -p epochs=8 -p hidden=32

screenshots: $(STAMP)
	@mkdir -p docs/images build
	rm -f $(SHOT_STORE)*
	$(SHOT) --run program-array --screenshot docs/images/programming.png
	$(SHOT) --run drift -p n_reads=20 --screenshot docs/images/drift.png
	$(SHOT) --run iv-sweep -p region=0:32,0:32 --screenshot docs/images/iv-sweep.png
	$(BIN)/xbarlab gui --backend '$(TRAIN_SPEC)' --store $(SHOT_STORE) \
		--run train $(TRAIN_SHOT) --screenshot docs/images/training.png

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name '*.nb[ic]' -print | xargs rm -f
