# Each target makes its own virtual environment. torch is pinned to the CPU build that is on the
# machine's disk so that no CUDA packages are downloaded.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_PIN ?= torch==2.13.0

.PHONY: demo test lint bench clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)"
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	touch $@

demo: $(VENV)/.installed
	$(PY) examples/demo_red_wine.py

test: $(VENV)/.installed
	$(PY) -m ruff check skar tests benchmarks examples
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) benchmarks/red_wine.py

clean:
	rm -rf $(VENV) build *.egg-info
