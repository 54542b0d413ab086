"""The notebooks as a learner meets them: run in JupyterLab, in a real (headless) browser.

nbval proves that every notebook runs in a kernel and reproduces its outputs, but it renders nothing: it
cannot see a widget that JupyterLab fails to display, or a slider whose moves never reach the kernel. Here
Chromium drives JupyterLab (fixtures in conftest.py) through Run > Run All Cells, as a learner would, and:

- every non-empty code cell gets an execution count in this run, the kernel ends idle, and no cell shows an
  error (a traceback, or a widget that failed to display; stderr text such as progress bars is allowed);
- in notebook 07, the latent-space explorers render (FloatSliders beside the decoded ``widgets.Image``), and
  for each explorer, focusing its first slider and pressing an arrow key moves that slider and changes the
  image's ``src``: the keypress went through the widget to the kernel's ``slider.observe`` callback, which
  decoded the new z and sent back a new PNG. Screenshots of each explorer before and after go to tmp_path;
- notebook 10's conditional explorer is found the same way, and its label picker too: clicking another label's
  button makes that button the active one and changes the image's ``src`` (the kernel decoded the same z with
  the new label).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.browser

KEY_PRESSES = 5
WIDGET_MS = 60_000  # to render a widget, or to redraw it after a key press


def wait_until_still(explorer: Locator, quiet_s: float = 1.0, timeout_s: float = 30.0) -> None:
    """Wait until the explorer's images have not changed for ``quiet_s``: the kernel has redrawn for every key
    press, so the screenshot taken next shows the last one (and, in the 2-d explorer, the marker moved with it)."""
    images = explorer.locator("img.widget-image")
    sources, still_since = None, time.monotonic()
    deadline = still_since + timeout_s
    while time.monotonic() < deadline and time.monotonic() - still_since < quiet_s:
        now = images.evaluate_all("nodes => nodes.map((node) => node.src)")
        if now != sources:
            sources, still_since = now, time.monotonic()
        explorer.page.wait_for_timeout(200)


def check_explorers_redraw(page: Page, screenshots: Path) -> None:
    """Move the first slider of every explorer with the keyboard and require its decoded image to change."""
    from playwright.sync_api import expect  # here, not at import: conftest skips when playwright is missing

    explorers = (page.locator(".jp-OutputArea-output")
                 .filter(has=page.locator(".widget-slider .noUi-handle"))
                 .filter(has=page.locator("img.widget-image")))
    expect(page.get_by_text("Loading widget..."), "widgets still loading").to_have_count(0, timeout=WIDGET_MS)
    expect(explorers.first, "no explorer rendered: FloatSliders beside a widgets.Image").to_be_visible()
    for index in range(explorers.count()):
        explorer = explorers.nth(index)
        handle = explorer.locator(".noUi-handle[role=slider]").first
        image = explorer.locator("img.widget-image").first
        expect(image, f"explorer {index}: the decoded image has no picture") \
            .to_have_attribute("src", re.compile("."), timeout=WIDGET_MS)
        value, src = handle.get_attribute("aria-valuenow"), image.get_attribute("src")
        key = "ArrowRight" if float(value) < float(handle.get_attribute("aria-valuemax")) else "ArrowLeft"
        before, after = screenshots / f"explorer-{index}-before.png", screenshots / f"explorer-{index}-after.png"
        explorer.screenshot(path=before)
        handle.focus()
        expect(handle, f"explorer {index}: the slider handle cannot take the keyboard focus").to_be_focused()
        for _ in range(KEY_PRESSES):
            page.keyboard.press(key)
        expect(handle, f"explorer {index}: {key} did not move the slider").not_to_have_attribute("aria-valuenow", value)
        expect(image, f"explorer {index}: the slider moved but the decoded image was not redrawn") \
            .not_to_have_attribute("src", src, timeout=WIDGET_MS)
        wait_until_still(explorer)
        explorer.screenshot(path=after)
        print(f"explorer {index}: {before} -> {after}")
        check_label_picker_redraws(explorer, index, screenshots)


def check_label_picker_redraws(explorer: Locator, index: int, screenshots: Path) -> None:
    """If the explorer has a label picker (ToggleButtons), click a label that is not shown and require the
    decoded image to change."""
    from playwright.sync_api import expect

    buttons = explorer.locator(".widget-toggle-buttons button")
    if buttons.count() == 0:
        return
    image = explorer.locator("img.widget-image").first
    src = image.get_attribute("src")
    # Pinned by its value: a locator for "the first inactive button" would move on once this one is active.
    value = explorer.locator(".widget-toggle-buttons button:not(.mod-active)").first.get_attribute("value")
    other = explorer.locator(f'.widget-toggle-buttons button[value="{value}"]')
    label = other.inner_text().strip()
    other.click()
    expect(other, f"explorer {index}: the button of label {label} did not become the active one") \
        .to_have_class(re.compile("mod-active"))
    expect(image, f"explorer {index}: label {label} was picked but the decoded image was not redrawn") \
        .not_to_have_attribute("src", src, timeout=WIDGET_MS)
    wait_until_still(explorer)
    explorer.screenshot(path=screenshots / f"explorer-{index}-label-{label}.png")


@pytest.mark.parametrize("notebook", ["07_exploring_the_latent_space.ipynb", "10_conditional_vae.ipynb"])
def test_explorers_redraw_when_a_slider_moves_by_keyboard(
        run_notebook: Callable[[str], Page], notebook: str, tmp_path: Path) -> None:
    check_explorers_redraw(run_notebook(notebook), tmp_path)


@pytest.mark.parametrize("notebook", ["04_elbo.ipynb"])
def test_theory_notebook_runs_in_jupyterlab(run_notebook: Callable[[str], Page], notebook: str) -> None:
    run_notebook(notebook)
