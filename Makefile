# Quick start: `make demo` and `make test`. Both create .venv on first use and install into it.
PYTHON ?= python3.11
VENV ?= .venv
# Pinned so pip takes the CPU wheel here; override with any pip arguments, e.g.
# `make TORCH="torch==2.13.0 --index-url <a CUDA wheel index>" test`.
TORCH ?= torch==2.13.0
# Every optional extra that installs here, so that their tests run instead of skipping.
EXTRAS ?= dev,export,openvino,logging,geo,fast-eval
# sahi requires opencv-python, which would sit beside opencv-python-headless (two cv2 builds in one
# environment): install sahi alone, then the small packages it imports. `make SAHI= test` skips it.
SAHI ?= sahi>=0.12
SAHI_NEEDS := shapely fire click requests pillow termcolor
BIN := $(VENV)/bin
STAMP := $(VENV)/.lrnet-installed

.PHONY: install demo test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-installs only when the project metadata or the pins change.
$(STAMP): $(BIN)/python pyproject.toml Makefile
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[$(EXTRAS)]"
	$(if $(SAHI),$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps "$(SAHI)")
	$(if $(SAHI),$(BIN)/python -m pip install -q --disable-pip-version-check $(SAHI_NEEDS))
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/lrnet demo

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

bench: install
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
