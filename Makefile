# `make run`: set up and run the pipeline. `make test`: set up and run the tests.
# Inner loop: `make test-quick` (no slow tests), `make lint`, `make docs`.
# `make bench`: the course's recipes beside the project's stages; writes BENCHMARKS.md.
# All work offline: Python packages come from the configured package index, Fashion-MNIST
# from Debian's dataset-fashion-mnist package.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
FASHION_MNIST := /usr/share/datasets/fashion-mnist
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
# The tested package set, pinned with hashes (`make lock` regenerates both from pyproject.toml).
# GPU hosts: `make setup LOCK=lock/requirements-gpu.txt`.
LOCK ?= lock/requirements.txt

# The Data Docs' browser assets (src/imagepipe/validation/datadocs.py): npm packages pinned by
# package-lock.json, installed into its node_modules/.
DATADOCS := vendor/datadocs

.PHONY: setup dataset browser run test test-quick lint docs bench lock clean

setup: $(VENV)/.installed $(DATADOCS)/node_modules/.installed

$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

# npm comes from Debian's package when it is missing and apt is there. The packages' install
# scripts are not run (vendor/datadocs/.npmrc): only their files are used.
$(DATADOCS)/node_modules/.installed: $(DATADOCS)/package.json $(DATADOCS)/package-lock.json $(DATADOCS)/.npmrc
	@if ! command -v npm >/dev/null && command -v apt-get >/dev/null; then \
		$(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q npm; \
	fi
	cd $(DATADOCS) && npm ci --no-progress
	touch $@

# Installs Debian's Fashion-MNIST when it is missing and apt is there; otherwise the download
# stage fetches the official files.
dataset:
	@if [ ! -d $(FASHION_MNIST) ] && command -v apt-get >/dev/null; then \
		$(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q dataset-fashion-mnist; \
	fi

# Installs Debian's chromium when it is missing and apt is there: the Data Docs test opens the
# pages in it (tests/validation/test_datadocs_browser.py).
browser:
	@if ! command -v chromium >/dev/null && command -v apt-get >/dev/null; then \
		$(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; \
	fi

run: setup dataset
	dvc repro

# One worker per core (at most 4), a test file per worker: the suite is mostly waiting on
# processes it starts, so two workers on two cores take less time than one.
test: setup dataset browser
	pytest -n auto --maxprocesses 4 --dist loadfile

# The inner loop: everything but the tests marked slow (real pipelines, servers, workers).
test-quick: setup dataset
	pytest -n auto --maxprocesses 4 --dist loadfile -m "not slow"

lint: setup
	ruff format --check .
	ruff check .
	mypy

# NO_MKDOCS_2_WARNING: Material's notice about MkDocs 2, printed on every build, is not ours.
docs: setup
	NO_MKDOCS_2_WARNING=1 mkdocs build --strict

# Measures the committed project in a clean clone.
bench: setup dataset
	python -m bench

# Re-resolves the locks after a change to pyproject.toml's dependencies (needs the package index).
# Pins already in a lock are kept; `make lock PIP_COMPILE_FLAGS=--upgrade` moves to the newest.
PIP_COMPILE := pip-compile --quiet --generate-hashes --allow-unsafe --no-emit-index-url --no-emit-find-links \
	--strip-extras $(PIP_COMPILE_FLAGS)
lock: setup
	$(PIP_COMPILE) --extra dev -o lock/requirements.txt pyproject.toml
	$(PIP_COMPILE) --extra dev --extra gpu -o lock/requirements-gpu.txt pyproject.toml

clean:
	rm -rf $(VENV) site data/raw data/validation/docs data/validation/result.json data/processed
