# Two set-up commands, both idempotent: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PYTEST_WORKERS ?= 2

.PHONY: demo test test-fast docs notebooks benchmark clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

$(VENV)/.installed-notebooks: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[notebooks]'
	touch $@

## demo: install into .venv and run the main job (vi-lab compare) on the embedded default data
demo: $(VENV)/.installed
	$(BIN)/vi-lab compare

## test: install with the dev extras and run every test, notebooks included
# One BLAS thread per worker: two workers on two cores, each with its own thread pool,
# otherwise oversubscribe the machine and matmuls slow down by an order of magnitude.
test: $(VENV)/.installed-dev
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --nbmake tests notebooks

## docs: build the Sphinx site, warnings as errors
docs: $(VENV)/.installed-dev
	$(BIN)/sphinx-build -E -W --keep-going -b html docs docs/_build/html

## notebooks: open JupyterLab on the notebooks folder
notebooks: $(VENV)/.installed-notebooks
	$(BIN)/jupyter lab notebooks

## benchmark: time exact inference, the estimators and the experiments (prints ratios, asserts nothing)
benchmark: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_exact.py
	$(BIN)/python benchmarks/bench_estimators.py
	$(BIN)/python benchmarks/bench_experiments.py

clean:
	rm -rf $(VENV) docs/_build results .pytest_cache
