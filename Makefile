# `make run`: set up and run the pipeline. `make test`: set up and run the tests.
# `make bench`: the course's recipes beside the project's stages; writes BENCHMARKS.md.
# Both work offline: Python packages come from the configured package index, Fashion-MNIST
# from Debian's dataset-fashion-mnist package.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
FASHION_MNIST := /usr/share/datasets/fashion-mnist
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: setup dataset run test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# Installs Debian's Fashion-MNIST when it is missing and apt is there; otherwise the download
# stage fetches the official files.
dataset:
	@if [ ! -d $(FASHION_MNIST) ] && command -v apt-get >/dev/null; then \
		$(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q dataset-fashion-mnist; \
	fi

run: setup dataset
	dvc repro

# One worker per core (at most 4), a test file per worker: the suite is mostly waiting on
# processes it starts, so two workers on two cores take about 3/4 of the serial time.
test: setup dataset
	pytest -n auto --maxprocesses 4 --dist loadfile

# Measures the committed project in a clean clone (about 20 minutes on 2 cores).
bench: setup dataset
	python -m bench

clean:
	rm -rf $(VENV) data/raw data/validation/docs data/validation/result.json data/processed
