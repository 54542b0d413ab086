"""Notebook hygiene that strict nbval alone does not catch.

nbval recognises a marker only when the comment line is exactly ``# NBVAL_IGNORE_OUTPUT``: with any
text after it the marker is silently ignored, and the cell passes only while its output happens to
repeat. Cells whose output is ignored must assert what matters instead. Notebooks are committed
executed, top to bottom, in a fresh kernel, and must not depend on this machine.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MARKERS = {"NBVAL_IGNORE_OUTPUT", "NBVAL_CHECK_OUTPUT", "NBVAL_RAISES_EXCEPTION", "NBVAL_SKIP"}
REPOSITORY = re.search(r'^Repository = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.MULTILINE).group(1)


def code_cells(path: Path) -> list[dict]:
    return [cell for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds the course: at least the set-up check"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_markers_are_exact_and_ignored_cells_assert(path):
    for index, cell in enumerate(code_cells(path)):
        lines = [line.strip() for line in source(cell).splitlines()]
        for line in lines:
            if "NBVAL" in line:
                assert line.lstrip("#").strip() in MARKERS, (
                    f"{path.name} code cell {index}: {line!r} is not an exact nbval marker; "
                    "put the marker alone on its line and any explanation on the next"
                )
        if "# NBVAL_IGNORE_OUTPUT" in lines:
            assert any(line.startswith("assert ") for line in lines), (
                f"{path.name} code cell {index}: output is ignored, so the cell must assert what matters"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_executed_top_to_bottom_without_errors(path):
    cells = code_cells(path)
    counts = [cell["execution_count"] for cell in cells if source(cell).strip()]
    assert counts == list(range(1, len(counts) + 1)), f"{path.name}: re-run top to bottom in a fresh kernel"
    for index, cell in enumerate(cells):
        for output in cell["outputs"]:
            assert output["output_type"] != "error", f"{path.name} code cell {index} stored an error"
            data = output.get("data", {})
            assert "image/svg+xml" not in data, f"{path.name} code cell {index}: SVG output (use PNG)"
            text = "".join(output.get("text", "")) + "".join(data.get("text/plain", ""))
            assert not re.search(r"/tmp/|/root/|/home/", text), f"{path.name} code cell {index} shows a machine path"
            assert not re.search(r" at 0x[0-9a-f]+>", text), f"{path.name} code cell {index} shows a memory address"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_colab_badge_and_install_cell_use_the_project_repository(path):
    notebook = json.loads(path.read_text())
    first_markdown = "".join(notebook["cells"][0]["source"])
    repository_path = REPOSITORY.removeprefix("https://github.com/")
    assert f"colab.research.google.com/github/{repository_path}/blob/main/notebooks/{path.name}" in first_markdown
    install = source(code_cells(path)[0])
    assert '"google.colab" in sys.modules' in install and f"git+{REPOSITORY}" in install


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_nothing_is_read_from_the_repository(path):
    """Colab receives only the .ipynb: data, figures and models must come from the package or be computed."""
    cells = json.loads(path.read_text())["cells"]
    for index, cell in enumerate(cells):
        text = source(cell)
        if cell["cell_type"] == "markdown":
            for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)", text) + re.findall(r'<img[^>]+src="([^"]+)"', text):
                assert target.startswith(("https://", "attachment:")), (
                    f"{path.name} cell {index} shows {target}, a file Colab will not have: draw it in a code cell")
        else:
            assert not re.search(r"""["'](\.{1,2}/|figures/|notebooks/|tests/|vae_course/)""", text), (
                f"{path.name} cell {index} names a repository path: Colab receives only the notebook")
            assert not re.search(r"\b(open|imread|Image\.open|torch\.load|np\.load)\(", text), (
                f"{path.name} cell {index} reads a file: load data with vae_course.data, models by training them")
