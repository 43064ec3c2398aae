# Two set-up commands, both idempotent: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PYTEST_WORKERS ?= 2

.PHONY: demo test test-fast docs slides js browser notebooks benchmark clean mutants

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

# MathJax (math in the docs and slides) and reveal.js (the slides), pinned in docs/package.json
# and its lock file, installed from the npm registry so that nothing is loaded from a CDN: the
# built site and decks open from disk with no network.
NPM    ?= npm
JS_DIR := docs/_build/npm
JS_STAMP := $(JS_DIR)/node_modules/.vi-lab-installed
$(JS_STAMP): docs/package.json docs/package-lock.json
	mkdir -p $(JS_DIR)
	cp docs/package.json docs/package-lock.json $(JS_DIR)/
	cd $(JS_DIR) && $(NPM) ci --no-audit --no-fund --loglevel=error
	touch $@

## js: install MathJax and reveal.js from npm into docs/_build/npm (needs node and npm)
js: $(JS_STAMP)

## browser: Debian's chromium for the headless-browser tests (installed with apt-get when run
## as root; otherwise `sudo apt-get install chromium`); Playwright, which drives it, is a dev
## extra (its own browser download is never used: the tests launch /usr/bin/chromium)
browser: $(VENV)/.installed-dev
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium for the browser tests"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "could not install chromium with apt-get: the browser tests will be skipped"; \
	else \
	  echo "no chromium, and no root to install it: the browser tests will be skipped (sudo apt-get install chromium)"; \
	fi

$(VENV)/.installed-notebooks: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[notebooks]'
	touch $@

## demo: install into .venv and run the main job (vi-lab compare) on the embedded default data
demo: $(VENV)/.installed
	$(BIN)/vi-lab compare

## test: install with the dev extras and run every test, notebooks included
# One BLAS thread per worker: two workers on two cores, each with its own thread pool,
# otherwise oversubscribe the machine and matmuls slow down by an order of magnitude.
# The docs, offline-math and slides tests need MathJax and reveal.js (js), nbconvert, and a browser.
test: $(VENV)/.installed-dev js browser
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --nbmake tests notebooks

## docs: build the Sphinx site, warnings as errors
docs: $(VENV)/.installed-dev js
	$(BIN)/sphinx-build -E -W --keep-going -b html docs docs/_build/html

## slides: one reveal.js deck per lecture (and per notebook) in docs/_build/slides, notebooks
## executed so the decks show their figures; opens offline (reveal.js and MathJax bundled)
slides: $(VENV)/.installed-dev js
	OPENBLAS_NUM_THREADS=1 $(BIN)/python docs/slides/build.py --out docs/_build/slides

## notebooks: open JupyterLab on the notebooks folder
notebooks: $(VENV)/.installed-notebooks
	$(BIN)/jupyter lab notebooks

## mutants: run the hand-written realistic mutants (benchmarks/mutant_list.py) against their tests
## on a private copy of git HEAD and print the kill rate (CPU-heavy: about 15 minutes on one core)
mutants: $(VENV)/.installed-dev
	OPENBLAS_NUM_THREADS=1 $(BIN)/python benchmarks/mutants.py

## benchmark: time exact inference, the estimators and the experiments (prints ratios, asserts nothing)
benchmark: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_exact.py
	$(BIN)/python benchmarks/bench_estimators.py
	$(BIN)/python benchmarks/bench_experiments.py
	$(BIN)/python benchmarks/bench_scaling.py

clean:
	rm -rf $(VENV) docs/_build results .pytest_cache
