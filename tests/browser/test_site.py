"""The course website (``make site``) as a reader meets it: served on a loopback port, opened in headless Chromium.

The site is the one ``make site`` built into site/_build/html/ (CI runs ``make site`` before ``make test``). If
it has not been built, or a notebook, figure or module changed after the build, the tests skip saying so,
except under ``CI=true``, where that is a failure. A local server in this process serves the folder on
127.0.0.1, and every page opens in a fresh browser context (no cache, so every resource really loads). Each
page of the site that a reader reaches from the home page is checked — the home page, every course page (one
per notebook), the gallery, the API reference and each module's page:

- every page, image, script, stylesheet and font answers HTTP 200, and no request goes to any host but the
  loopback one: every request is recorded (and one to another host is refused before it leaves);
- the math is typeset: no ``$...$``, ``$$...$$``, ``\\(...\\)`` or ``\\[...\\]`` is left in the text outside
  code, MathJax reports no error, and a course page whose notebook has math shows it as MathJax output;
- every image has loaded (``naturalWidth > 0``), and a course page shows one picture for each PNG output of
  its notebook and one static drawing for each widget (no widget box waiting for JavaScript);
- every internal link resolves: the target answers 200, and a ``#fragment`` names an element of that page;
- a course page has the local Open-in-Colab badge, linked to Colab's copy of its notebook, and a download
  link that gives the committed .ipynb byte for byte;
- each module's API page documents every public function and class defined in it;
- search finds a course page.

Screenshots of the home page and of two course pages (04, math; 07, widgets) go to pytest's temporary
directory; their paths are printed.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urldefrag, urlsplit

import pytest

import vae_course

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MODULES = ["vae_course", *(module.name for module in pkgutil.walk_packages(vae_course.__path__, "vae_course.")
                           if not any(part.startswith("_") for part in module.name.split(".")))]
PAGES = ["index.html", *(f"course/{path.stem}.html" for path in NOTEBOOKS), "gallery.html", "api/index.html",
         *(f"api/{module}.html" for module in MODULES)]
LOADED_TYPES = {"document", "stylesheet", "script", "image", "font"}

# The page's visible text outside code and typeset math, with what a TeX delimiter left untypeset looks like.
TEXT_OUTSIDE_CODE = """() => {
  const skip = 'pre, code, script, style, textarea, mjx-container, .MathJax, .highlight';
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const parts = [];
  while (walker.nextNode()) {
    if (!walker.currentNode.parentElement.closest(skip)) parts.push(walker.currentNode.textContent);
  }
  return parts.join(' ');
}"""
RAW_TEX = re.compile(r"\$\$.+?\$\$|\$[^$\s][^$]*?\$|\\\(.+?\\\)|\\\[.+?\\\]|\\begin\{", re.S)

# Every image of the page, loaded eagerly and decoded: the ones that do not load, with their naturalWidth.
BROKEN_IMAGES = """async () => {
  const images = [...document.images];
  await Promise.all(images.map((image) => { image.loading = 'eager'; return image.decode().catch(() => null); }));
  return images.filter((image) => !(image.complete && image.naturalWidth > 0))
    .map((image) => `${image.currentSrc || image.src} (naturalWidth ${image.naturalWidth})`);
}"""


class Visit:
    """One page in a fresh browser context, with every request it made and every response it got."""

    def __init__(self, browser: Browser, base: str) -> None:
        self.base, self.host = base, urlsplit(base).netloc
        self.context = browser.new_context(viewport={"width": 1300, "height": 900})
        self.outside: list[str] = []  # requests to another host, refused
        self.bad: list[str] = []  # resources that did not answer 200
        self.context.route("**/*", self.route)
        self.context.on("response", self.response)
        self.context.on("requestfailed", lambda request: self.bad.append(f"{request.url}: {request.failure}"))
        self.page = self.context.new_page()

    def route(self, route, request) -> None:
        if urlsplit(request.url).netloc == self.host:
            route.continue_()
        else:
            self.outside.append(request.url)
            route.abort()

    def response(self, response) -> None:
        if response.request.resource_type in LOADED_TYPES and response.status != 200:
            self.bad.append(f"{response.url}: HTTP {response.status} ({response.request.resource_type})")

    def open(self, path: str) -> Page:
        response = self.page.goto(f"{self.base}/{path}", wait_until="load")
        assert response is not None and response.status == 200, f"{path}: HTTP {response and response.status}"
        # MathJax (on the pages with math) typesets after loading; its startup promise settles when it is done.
        self.page.evaluate("async () => { if (window.MathJax?.startup?.promise) await window.MathJax.startup.promise; }")
        return self.page

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser: Browser, site: str) -> Iterator[Visit]:
    visit = Visit(browser, site)
    try:
        yield visit
    finally:
        visit.close()


# Internal links already resolved, shared by the pages: URL without fragment -> the ids on that page.
RESOLVED: dict[str, set[str]] = {}


def ids_at(url: str) -> set[str] | None:
    """The element ids of the page at ``url`` (an empty set for a file that is not HTML); None unless HTTP 200."""
    if url not in RESOLVED:
        try:
            with urllib.request.urlopen(url, timeout=30) as answer:
                body = answer.read()
                html = answer.headers.get_content_type() == "text/html"
        except urllib.error.HTTPError:
            return None
        RESOLVED[url] = set(re.findall(r'\sid="([^"]+)"', body.decode())) if html else set()
    return RESOLVED[url]


def broken_links(page: Page, host: str) -> list[str]:
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map((link) => link.href)")
    broken = []
    for href in sorted(set(hrefs)):
        if urlsplit(href).netloc != host:
            continue
        url, fragment = urldefrag(href)
        ids = ids_at(url)
        if ids is None:
            broken.append(f"{href}: not found")
        elif fragment and fragment not in ids:
            broken.append(f"{href}: no element with id {fragment!r}")
    return broken


def notebook_outputs(path: Path) -> tuple[int, int, bool]:
    """(PNG outputs, widget outputs, whether a markdown cell has $-math) of a committed notebook."""
    notebook = json.loads(path.read_text())
    outputs = [output for cell in notebook["cells"] for output in cell.get("outputs", [])]
    pngs = sum("image/png" in output.get("data", {}) for output in outputs)
    widgets = sum("application/vnd.jupyter.widget-view+json" in output.get("data", {}) for output in outputs)
    math = any("$" in "".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "markdown")
    return pngs, widgets, math


@pytest.mark.parametrize("path", PAGES)
def test_page_loads_everything_locally_with_math_images_and_links(visit: Visit, path: str) -> None:
    page = visit.open(path)
    broken_images = page.evaluate(BROKEN_IMAGES)
    text = page.evaluate(TEXT_OUTSIDE_CODE)
    assert not visit.outside, f"{path} requested other hosts than the loopback one:\n" + "\n".join(visit.outside)
    assert not visit.bad, f"{path}: resources that did not load with HTTP 200:\n" + "\n".join(visit.bad)
    assert not broken_images, f"{path}: images that did not load:\n" + "\n".join(broken_images)
    raw = [match[0][:80] for match in RAW_TEX.finditer(text)]
    assert not raw, f"{path}: TeX left untypeset in the text:\n" + "\n".join(raw)
    errors = page.locator("mjx-merror").all_inner_texts()
    assert not errors, f"{path}: MathJax could not typeset:\n" + "\n".join(errors)
    broken = broken_links(page, visit.host)
    assert not broken, f"{path}: internal links that do not resolve:\n" + "\n".join(broken)
    problems = page.locator(".problematic, .system-message").all_inner_texts()
    assert not problems, f"{path}: markup that Sphinx could not read:\n" + "\n".join(problems)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_course_page_shows_the_notebook(visit: Visit, notebook: Path) -> None:
    page = visit.open(f"course/{notebook.stem}.html")
    pngs, widgets, math = notebook_outputs(notebook)
    article = page.locator("article")
    assert article.locator(".cell_output img:not(.widget-static-image)").count() == pngs, \
        f"{notebook.name} has {pngs} PNG outputs; its page must show each as an image"
    assert article.locator(".widget-static").count() == widgets, \
        f"{notebook.name} displays {widgets} widgets; its page must draw each from its saved state"
    assert page.locator(".jupyter-widgets, script[type='application/vnd.jupyter.widget-view+json']").count() == 0, \
        f"{notebook.name}: its page holds live widget markup, which needs widget JavaScript from a CDN"
    assert page.get_by_text("Loading widget").count() == 0, f"{notebook.name}: a widget waits for JavaScript"
    if math:
        assert article.locator("mjx-container").count() > 0, f"{notebook.name} has math; MathJax typeset none of it"

    badge = article.locator(f"a[href^='https://colab.research.google.com/github/'][href$='/notebooks/{notebook.name}'] img")
    assert badge.count() == 1, f"{notebook.name}: no Open-in-Colab badge linked to Colab's copy of the notebook"
    assert urlsplit(badge.evaluate("image => image.currentSrc")).netloc == visit.host, "the Colab badge is not local"
    download = article.locator(f"a[href$='/{notebook.name}']").filter(has_text="Download")
    assert download.count() == 1, f"{notebook.name}: no download link to the notebook"
    with urllib.request.urlopen(download.evaluate("link => link.href"), timeout=30) as answer:
        assert answer.read() == notebook.read_bytes(), f"the download link does not give the committed {notebook.name}"


@pytest.mark.parametrize("module", MODULES)
def test_api_page_documents_every_public_function_and_class(site: str, module: str) -> None:
    defined = [f"{module}.{name}" for name, value in vars(importlib.import_module(module)).items()
               if not name.startswith("_") and (inspect.isfunction(value) or inspect.isclass(value))
               and value.__module__ == module]
    ids = ids_at(f"{site}/api/{module}.html")
    assert ids is not None, f"api/{module}.html does not exist"
    missing = [name for name in defined if name not in ids]
    assert not missing, f"api/{module}.html does not document: {', '.join(missing)}"


def test_search_finds_a_course_page(visit: Visit) -> None:
    from playwright.sync_api import expect  # here, not at import: conftest skips when playwright is missing

    page = visit.open("search.html?q=reparameterization")
    results = page.locator("#search-results a[href*='05_reparameterization']")
    expect(results.first, "searching 'reparameterization' does not find notebook 05").to_be_visible(timeout=30_000)
    assert not visit.outside, "search requested other hosts:\n" + "\n".join(visit.outside)


def test_screenshots_of_home_and_course_pages(visit: Visit, tmp_path: Path) -> None:
    for path in ["index.html", "course/04_elbo.html", "course/07_exploring_the_latent_space.html"]:
        page = visit.open(path)
        shot = tmp_path / f"{Path(path).stem}.png"
        page.screenshot(path=shot, full_page=True)
        print(f"{path}: {shot}")
    assert not visit.outside and not visit.bad, visit.outside + visit.bad
