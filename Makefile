# Each target makes its own virtual environment in .venv. torch is pinned to the CPU build that
# is on the machine's disk so that no CUDA packages are downloaded.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_PIN ?= torch==2.13.0

.PHONY: demo test lint docs docs-noplot bench clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)"
	$(PY) -m pip install --quiet -e ".[dev,docs,dask,accelerate]"
	touch $@

$(VENV)/.bench: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[bench]"
	touch $@

# The README's demo command.
demo: $(VENV)/.installed
	$(PY) examples/demo_red_wine.py

# The README's test command (CI runs exactly this): lint, the test suite with the doctests,
# and the documentation with its gallery, warnings as errors.
test: $(VENV)/.installed
	$(PY) -m ruff check skar tests benchmarks examples docs
	$(PY) -m pytest -q
	PYTHON=$(abspath $(PY)) docs/build.sh

lint: $(VENV)/.installed
	$(PY) -m ruff check skar tests benchmarks examples docs

# HTML in docs/_build/html, gallery examples executed, warnings are errors. Offline.
docs: $(VENV)/.installed
	PYTHON=$(abspath $(PY)) docs/build.sh

# The same pages without running the gallery examples.
docs-noplot: $(VENV)/.installed
	PYTHON=$(abspath $(PY)) docs/build.sh --noplot

# Benchmarks print markdown tables and write them to benchmarks/results/ (see
# benchmarks/README.md for each one's command and options).
bench: $(VENV)/.bench
	$(PY) benchmarks/red_wine.py

clean:
	rm -rf $(VENV) build *.egg-info docs/_build docs/auto_examples docs/generated
