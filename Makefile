# uv2: every command creates .venv (python3 -m venv; pip install -e ".[dev]") when it is missing.
PY ?= python3
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
TABLE ?= c
SCALE ?= tiny
PYTEST_ARGS ?=

.PHONY: venv test test-slow ablation tensorboard bench lint clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(PYTHON) -m pip install -q --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

## the test suite (slow extras excluded; `make test-slow` runs everything)
test: $(STAMP)
	$(PYTHON) -m pytest -m "not slow" -q $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(PYTHON) -m pytest -q $(PYTEST_ARGS)

## reproduce one ablation table: make ablation TABLE=c [SCALE=tiny]
ablation: $(STAMP)
	$(PYTHON) ablations/run.py --table $(TABLE) --scale $(SCALE)

## TensorBoard over every run of a table (or all results)
tensorboard: $(STAMP)
	$(VENV)/bin/tensorboard --logdir results/$(if $(filter-out all,$(TABLE)),table_$(TABLE),)

## speed benchmark of the model (uv2 vs the official layout) on this machine
bench: $(STAMP)
	$(PYTHON) benchmarks/speed.py

lint: $(STAMP)
	$(VENV)/bin/ruff check uv2 tests ablations benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
