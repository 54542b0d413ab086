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
# (--nbval-current-env is set in pyproject.toml). Under CI=true the site's browser test must run, so
# the site is built first; elsewhere that test skips, with the reason, when the site is not built.
test: $(STAMP) $(if $(filter true,$(CI)),site)
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

# Speed, never part of `make test`: training throughput of fit against a minimal hand-written step of
# the same training, a tutorial pipeline and the matmul roofline (benchmarks/README.md). The table
# prints here; JSON goes to benchmarks/results/.
bench: $(STAMP)
	$(BIN)/python benchmarks/train_throughput.py

# Regenerates every PNG in figures/ from nothing (trains the models it needs, about a minute on a CPU).
figures: $(STAMP)
	$(BIN)/python -m vae_course figures --out figures

# The course as a website in site/_build/html/ (open index.html): the committed notebooks rendered, never
# executed, the gallery, the API reference and search (site/conf.py). Sphinx comes from the `site` extra;
# MathJax from npm into site/_vendor/, so that no page loads anything from another host. -W: a warning
# (a notebook or docstring Sphinx cannot read, a broken link) fails the build, and a failed build forgets
# what it read, so the next one reads everything again and cannot pass by skipping the faulty page.
# site/_build/.built, stamped when the last good build started, tells the browser test
# (tests/browser/test_site.py) whether a source changed since.
.PHONY: site
MATHJAX_VERSION := 3.2.2
MATHJAX := site/_vendor/.mathjax-$(MATHJAX_VERSION)
SITE_STAMP := $(VENV)/.installed-site-tools

$(SITE_STAMP): $(STAMP)
	$(BIN)/python -m pip install -e ".[dev,site]"
	@touch $@

$(MATHJAX):
	rm -rf site/_vendor && mkdir -p site/_vendor/mathjax
	npm pack --silent --pack-destination site/_vendor mathjax@$(MATHJAX_VERSION) >/dev/null
	tar -xzf site/_vendor/mathjax-$(MATHJAX_VERSION).tgz -C site/_vendor/mathjax --strip-components=2 package/es5
	rm site/_vendor/mathjax-$(MATHJAX_VERSION).tgz
	@touch $@

site: $(SITE_STAMP) $(MATHJAX)
	@mkdir -p site/_build && touch site/_build/.started
	$(BIN)/python -m sphinx -b html -W --keep-going -q -d site/_build/doctrees site site/_build/html \
		|| { rm -rf site/_build/doctrees; exit 1; }
	@mv site/_build/.started site/_build/.built
	@echo "site built: open site/_build/html/index.html"

clean:
	rm -rf $(VENV) $(VENV_MIN) .pytest_cache *.egg-info
	rm -rf site/_build site/_vendor site/course site/api/*.rst
