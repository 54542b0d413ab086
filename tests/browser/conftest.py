"""Fixtures for the browser tests: headless Chromium, JupyterLab serving a throwaway copy of notebooks/, and the
built course site served on a loopback port.

The browser tests need Debian's ``/usr/bin/chromium`` and playwright-python (in the dev extra); Playwright's
own browser downloads are never used. Without them the tests are skipped, except under ``CI=true``: CI
installs both (``.ci/run``), so there a missing piece is a failure and the suite cannot pass by skipping.

JupyterLab runs from this environment (``sys.executable -m jupyter lab``), so its kernel is this interpreter,
as in ``make test``. It listens on a free loopback port behind a random token, and everything it writes
(config, settings, runtime files, workspaces, the IPython profile, saved notebooks) stays in a temporary
directory. HOME is left alone so that the notebooks find the data cache exactly as ``make test`` does.
The served notebooks are copies with outputs and execution counts removed, so every count a test sees comes
from its own run. Lab's settings turn off the news prompt and the update check, start a notebook's kernel
without asking, and attach every cell to the page (no windowing), so the tests see the whole notebook.

The site is the one ``make site`` built (site/_build/html/), served by this process on a free loopback port.
It is not built here: CI runs ``make site`` before ``make test``. Not built, or older than a notebook, figure,
module or site source, it skips the site's tests with that reason, and fails them under ``CI=true``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "site" / "_build" / "html"
SITE_BUILT = ROOT / "site" / "_build" / ".built"  # `make site`: stamped when its last good build started
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none", "autoStartDefaultKernel": True},
}
# Generous: a 2-core machine shared with other work; notebook 07 trains small models for ~40 s.
SERVER_START_S = 180
KERNEL_START_S = 180
RUN_ALL_S = 900

# What the learner would see, read from Lab's own models (window.jupyterapp): the kernel's status, an open
# dialog, the non-empty code cells still without an execution count (or queued), and the cells showing an
# error. An error is an output of type "error" (a traceback; stderr text such as progress bars is not one)
# or a widget that failed to display.
NOTEBOOK_STATE = """() => {
  const dialog = document.querySelector('.jp-Dialog')?.innerText ?? null;
  const panel = window.jupyterapp?.shell.currentWidget;
  if (!panel?.content?.widgets || !panel.sessionContext) return {kernel: 'loading', dialog, unfinished: [], errors: []};
  const code = panel.content.widgets
    .map((cell, index) => ({cell, index, source: cell.model.sharedModel.getSource()}))
    .filter(({cell, source}) => cell.model.type === 'code' && source.trim() !== '');
  const label = ({index, source}) => `cell ${index} (${source.trim().split('\\n')[0]})`;
  const errors = code.flatMap((entry) => [
    ...entry.cell.model.outputs.toJSON().filter((output) => output.output_type === 'error')
      .map((output) => `${label(entry)}: ${output.ename}: ${output.evalue}`),
    ...[...entry.cell.node.querySelectorAll('.jp-OutputArea-output')]
      .filter((node) => node.textContent.startsWith('Error displaying widget')
                        || node.querySelector('.jupyter-widgets-error-widget'))
      .map((node) => `${label(entry)}: ${node.textContent.trim()}`),
  ]);
  return {
    kernel: panel.sessionContext.session?.kernel?.status ?? 'none',
    dialog,
    unfinished: code.filter(({cell}) => cell.model.executionCount === null || cell.model.executionState === 'running')
      .map(({index}) => index),
    errors,
  };
}"""


def require(missing: str,
            ci_fix: str = "CI must install it (.ci/run: apt-get install chromium; pip install -e '.[dev]')",
            local_fix: str = "the browser tests need Debian's chromium and playwright (pip install -e '.[dev]')",
            ) -> NoReturn:
    """Skip without what a browser test needs, but fail under CI, which provides it (.ci/run)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{missing}: {ci_fix}")
    pytest.skip(f"{missing}: {local_fix}")


@dataclass(frozen=True)
class Lab:
    """A running JupyterLab: its address, its token and the directory it serves."""

    url: str
    token: str
    root: Path

    def api(self, method: str, path: str) -> Any:
        """One call to Jupyter Server's REST API, authenticated with the token; the decoded JSON answer."""
        request = urllib.request.Request(f"{self.url}/api/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        for kernel in self.api("GET", "kernels"):
            self.api("DELETE", f"kernels/{kernel['id']}")


def copy_without_outputs(source: Path, target: Path) -> None:
    """Copy every notebook in ``source`` to ``target`` with its outputs and execution counts removed."""
    target.mkdir()
    for path in sorted(source.glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                cell["outputs"], cell["execution_count"] = [], None
        (target / path.name).write_text(json.dumps(notebook, indent=1))


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def log_tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_until_ready(lab: Lab, server: subprocess.Popen, log: Path) -> None:
    """Poll the REST API until the server answers, failing early if it exits."""
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {server.returncode}; its log ends:\n{log_tail(log)}")
        try:
            lab.api("GET", "status")
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer {lab.url}/api/status within {SERVER_START_S} s; "
                       f"its log ends:\n{log_tail(log)}")


def stop(lab: Lab, server: subprocess.Popen) -> None:
    """Stop the kernels, then the server's process group. Kernels run in sessions of their own, so they are
    shut down through the API first; SIGTERM makes the server shut down any it still has."""
    with contextlib.suppress(OSError):
        lab.shutdown_kernels()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium, driven by Playwright."""
    if not CHROMIUM.exists():
        require(f"{CHROMIUM} is missing")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require("playwright is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab from this environment serving a copy of notebooks/, stopped with its kernels at the end."""
    home = tmp_path_factory.mktemp("jupyterlab")
    root = home / "notebooks"
    copy_without_outputs(ROOT / "notebooks", root)
    settings = home / "config" / "lab" / "user-settings"
    for plugin, values in LAB_SETTINGS.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = os.environ | {
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "IPYTHONDIR": str(home / "ipython"),
    }
    lab = Lab(url=f"http://127.0.0.1:{free_loopback_port()}", token=secrets.token_hex(16), root=root)
    command = [
        sys.executable, "-m", "jupyter", "lab", "--allow-root", "--no-browser",
        "--ip=127.0.0.1", f"--port={lab.url.rsplit(':', 1)[1]}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={lab.token}", f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp, read by NOTEBOOK_STATE
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
    ]
    log = home / "server.log"
    with log.open("wb") as output:
        server = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_ready(lab, server, log)
        yield lab
    finally:
        stop(lab, server)


def wait_for(page: Page, done: Callable[[dict], bool], seconds: float, what: str) -> dict:
    """Poll NOTEBOOK_STATE until ``done`` holds; fail saying ``what`` did not happen, with the last state."""
    deadline = time.monotonic() + seconds
    while not done(state := page.evaluate(NOTEBOOK_STATE)):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {seconds:.0f} s; last seen: {state}")
        page.wait_for_timeout(500)
    return state


def finished(state: dict) -> bool:
    """Run All is over: an error shows, the kernel died, or every cell has run and the kernel is idle."""
    return bool(state["errors"]) or state["kernel"] == "dead" or (state["kernel"] == "idle" and not state["unfinished"])


@pytest.fixture
def run_notebook(browser: Browser, lab: Lab) -> Iterator[Callable[[str], Page]]:
    """``run_notebook(name)`` opens the served copy of notebooks/<name> in a fresh browser context, waits for
    its kernel, clicks Run > Run All Cells and waits until every non-empty code cell has an execution count
    and the kernel is idle. It fails on any error shown in the notebook and returns the page. Afterwards
    the browser context is closed and the kernels are shut down."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})

    def run(name: str) -> Page:
        assert (lab.root / name).exists(), f"notebooks/{name} does not exist"
        page = context.new_page()
        page.goto(f"{lab.url}/lab/tree/{name}?reset&token={lab.token}")  # reset: no tabs from earlier tests
        # LAB_SETTINGS prevent the usual dialogs (news, kernel choice); any other one would block the run.
        state = wait_for(page, lambda s: s["kernel"] == "idle" or s["dialog"], KERNEL_START_S,
                         f"{name}: the kernel did not start")
        assert not state["dialog"], f"{name}: JupyterLab showed a dialog while opening the notebook:\n{state['dialog']}"
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        state = wait_for(page, finished, RUN_ALL_S, f"{name}: Run All did not finish")
        assert not state["errors"], f"{name} shows errors in JupyterLab:\n" + "\n".join(state["errors"])
        assert state["kernel"] == "idle", f"{name}: the kernel died while running the notebook"
        return page

    try:
        yield run
    finally:
        context.close()
        lab.shutdown_kernels()


def site_sources() -> list[Path]:
    """What the site is built from: a change to any of these after the build makes the built site stale."""
    site = ROOT / "site"
    generated = [site / "_build", site / "_vendor", site / "course"]  # the build, MathJax, the notebooks' copies
    own = [path for path in site.rglob("*") if path.is_file() and "__pycache__" not in path.parts
           and not any(path.is_relative_to(folder) for folder in generated)
           and not (path.parent == site / "api" and path.suffix == ".rst")]  # autosummary's pages
    return [*(ROOT / "notebooks").glob("*.ipynb"), *(ROOT / "figures").iterdir(),
            *(ROOT / "vae_course").rglob("*.py"), *own]


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def site() -> Iterator[str]:
    """The site that `make site` built, served from this process on a free loopback port; its base URL. Skips
    (fails under CI) when the site is not built or is older than what it is built from."""
    fixes = ("CI runs `make site` before `make test` (.ci/run)", "run `make site`, then test again")
    if not (SITE / "index.html").exists() or not SITE_BUILT.exists():
        require(f"the site is not built ({SITE})", *fixes)
    newer = [str(path.relative_to(ROOT)) for path in site_sources() if path.stat().st_mtime > SITE_BUILT.stat().st_mtime]
    if newer:
        require(f"the built site is older than {', '.join(newer[:5])}{' ...' if len(newer) > 5 else ''}", *fixes)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(SITE)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
