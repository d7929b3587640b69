# uv2: every command creates .venv (python3 -m venv; pip install -e .) when it is missing; the commands of the
# developers (tests, lint) add the dev tools (pip install -e ".[dev]": pytest, ruff, the notebooks' kernel, ...).
PY ?= python3
VENV := .venv
PYTHON := $(VENV)/bin/python
# installed: the package and what it needs to run (ablation, bench, tensorboard); then the dev tools too
RUN_STAMP := $(VENV)/.installed-run-stamp
STAMP := $(VENV)/.installed-stamp
TABLE ?= c
SCALE ?= tiny
SEEDS ?= 1,2,3
PYTEST_ARGS ?=
# test processes (pytest-xdist; 0: one, in pytest's own). Two on 2 cores: many tests wait on processes they start
TEST_JOBS ?= 2

.PHONY: venv test test-slow test-pyav ablation tensorboard bench lint clean

$(RUN_STAMP): setup.cfg pyproject.toml
	test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(PYTHON) -m pip install -q --disable-pip-version-check -e .
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(PYTHON) -m pip install -q --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

## the test suite (slow extras excluded; `make test-slow` runs everything)
test: $(STAMP)
	$(PYTHON) -m pytest -m "not slow" -q -n $(TEST_JOBS) --dist worksteal $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(PYTHON) -m pytest -q -n $(TEST_JOBS) --dist worksteal $(PYTEST_ARGS)

## the decode and frame-folder tests under another Python / PyAV pair (torch-free): make test-pyav PYAV_PYTHON=python3.12 PYAV=19.0.2
PYAV_PYTHON ?= python3.12
PYAV ?= 19.0.2
test-pyav:
	test -x .venv-pyav$(PYAV)/bin/python || $(PYAV_PYTHON) -m venv .venv-pyav$(PYAV)
	.venv-pyav$(PYAV)/bin/python -m pip install -q --disable-pip-version-check "av==$(PYAV)" numpy pytest
	PYTHONPATH=. .venv-pyav$(PYAV)/bin/python -m pytest -q --noconftest -p no:cacheprovider tests/test_data_decode.py tests/test_data_frames.py

## reproduce one ablation table: make ablation TABLE=c [SCALE=tiny] [SEEDS=1,2,3] (3 seeds: intervals, paired differences)
ablation: $(RUN_STAMP)
	$(PYTHON) ablations/run.py --table $(TABLE) --scale $(SCALE) --seeds $(SEEDS)

## TensorBoard over every run of a table (or all results)
tensorboard: $(RUN_STAMP)
	$(VENV)/bin/tensorboard --logdir results/$(if $(filter-out all,$(TABLE)),table_$(TABLE),)

## speed benchmark of the model (uv2 vs the official layout) on this machine
bench: $(RUN_STAMP)
	$(PYTHON) benchmarks/speed.py

lint: $(STAMP)
	$(VENV)/bin/ruff check uv2 tests ablations benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
