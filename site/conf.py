"""Sphinx configuration of the course site: `make site` builds it into site/_build/html/.

Sphinx with myst-nb and sphinx-book-theme: myst-nb renders the committed notebooks (never executing them),
autodoc and autosummary write the API reference from the package's docstrings, and Sphinx's own search
index makes it searchable. Nothing on a page loads from another host: MathJax is served from _static/
(`make site` fetches it from npm into site/_vendor/), widgets are drawn statically and the Colab badge is a
local image (site/_ext/course_site.py).
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

SITE = Path(__file__).resolve().parent
ROOT = SITE.parent
MATHJAX = SITE / "_vendor" / "mathjax" / "tex-chtml.js"
if not MATHJAX.exists():
    raise RuntimeError(f"{MATHJAX} is missing: build the site with `make site`, which fetches MathJax from npm")

sys.path.insert(0, str(SITE / "_ext"))
sys.path.insert(0, str(ROOT))  # autodoc imports the package from this checkout

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
REPOSITORY = PYPROJECT["urls"]["Repository"]  # https://github.com/OWNER/NAME

project = "Variational Autoencoders from first principles"
author = "the vae-course authors"
copyright = f"{author}, {PYPROJECT['license']['text']} licence"
release = version = PYPROJECT["version"]

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.autosummary", "sphinx.ext.mathjax", "course_site"]
exclude_patterns = ["_build", "_vendor", "_ext", "_templates", "**/.ipynb_checkpoints"]
templates_path = ["_templates"]

# The notebooks as committed: outputs rendered as they are, no kernel started.
nb_execution_mode = "off"
nb_merge_streams = True
nb_ipywidgets_js = {}  # widgets are drawn from their saved state by course_site, without the CDN scripts
myst_enable_extensions = ["dollarmath", "amsmath"]
course_colab_url = REPOSITORY.replace("https://github.com/", "https://colab.research.google.com/github/") \
    + "/blob/main/notebooks"

# Local MathJax 3: mathjax_path is relative to _static/, where html_static_path copies site/_vendor/.
mathjax_path = "mathjax/tex-chtml.js"

autosummary_generate = True
autodoc_member_order = "bysource"  # the order a module is written in: the idea first, helpers after
autodoc_default_options = {"members": True, "show-inheritance": True}
python_maximum_signature_line_length = 100

html_theme = "sphinx_book_theme"
html_title = "VAEs from first principles"
html_static_path = ["_static", "_vendor"]
html_css_files = ["course.css"]
html_copy_source = False  # the download link on each page gives the notebook itself
html_theme_options = {
    "repository_url": REPOSITORY,
    "use_repository_button": True,
    "use_download_button": False,
    "home_page_in_toc": True,
    "show_toc_level": 2,
}
