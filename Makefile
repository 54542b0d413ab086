# All set-up is two commands: `make lab` and `make test` (see README.md).
# Both create .venv if it is missing and (re)install the package with its dev extra whenever
# pyproject.toml changes; nothing else needs to be installed by hand.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-from-pyproject

.PHONY: lab test test-min bench figures clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e ".[dev]"
	@touch $@

# --allow-root lets JupyterLab start when run as root (containers, Colab-like machines);
# it changes nothing for an ordinary user.
lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks --allow-root

# pytest over tests/ and strict nbval over every notebook, with the venv's own kernel
# (--nbval-current-env is set in pyproject.toml).
test: $(STAMP)
	$(BIN)/python -m pytest tests/ --nbval notebooks/

# The package's tests (not the notebooks, not the browser) in a second venv holding exactly the oldest
# versions pyproject.toml promises: tools/lower_bounds.py turns each `>=` into `==` as pip constraints.
# torch 2.0 has wheels up to Python 3.11, hence its own interpreter. pytest and nbval are unpinned tools
# (nbval: pyproject's addopts name its option, and one test times a notebook through it).
PYTHON_MIN ?= python3.11
VENV_MIN ?= .venv-min
MIN_STAMP := $(VENV_MIN)/.installed-from-pyproject

$(MIN_STAMP): pyproject.toml tools/lower_bounds.py
	@test -x $(VENV_MIN)/bin/python || $(PYTHON_MIN) -m venv $(VENV_MIN)
	$(VENV_MIN)/bin/python tools/lower_bounds.py > $(VENV_MIN)/lower-bounds.txt
	$(VENV_MIN)/bin/python -m pip install -e . pytest nbval -c $(VENV_MIN)/lower-bounds.txt
	@touch $@

test-min: $(MIN_STAMP)
	VAE_COURSE_TEST_MIN=1 $(VENV_MIN)/bin/python -m pytest tests/ -m "not browser"

# Speed, never part of `make test`: training throughput of fit against a tutorial pipeline and the
# matmul roofline (benchmarks/README.md). The table prints here; JSON goes to benchmarks/results/.
bench: $(STAMP)
	$(BIN)/python benchmarks/train_throughput.py

# Regenerates every PNG in figures/ from nothing (trains the models it needs, about a minute on a CPU).
figures: $(STAMP)
	$(BIN)/python -m vae_course figures --out figures

clean:
	rm -rf $(VENV) $(VENV_MIN) .pytest_cache *.egg-info
