"""Notebook hygiene that strict nbval alone does not catch.

nbval recognises a marker only when the comment line is exactly ``# NBVAL_IGNORE_OUTPUT``: with any
text after it the marker is silently ignored, and the cell passes only while its output happens to
repeat. Cells whose output is ignored must assert what matters instead. Notebooks are committed
executed, top to bottom, in a fresh kernel, and must not depend on this machine.
"""

from __future__ import annotations

import ast
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


# --- The trust rules of the course (issue 11): goals and sources, hidden answers, checks that can fail --

COURSE = [path for path in NOTEBOOKS if not path.name.startswith("00")]  # 00 is the set-up check
SOLUTION = re.compile(r"^\s*#\s*@title\s+solution", re.IGNORECASE | re.MULTILINE)
# A number a solution's output must not show: a decimal, or an integer of two digits or more.
NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d+|(?<![\w.])\d{2,}(?![\w.])")


def markdown(path: Path) -> str:
    return "\n".join(source(cell) for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "markdown")


def shown_text(cell: dict) -> str:
    return "".join("".join(output.get("text", "")) + "".join(output.get("data", {}).get("text/plain", ""))
                   for output in cell["outputs"])


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.name)
def test_opens_with_learning_goals_and_ends_with_further_reading(path):
    text = markdown(path)
    goals, reading = text.lower().find("learning goals"), text.lower().rfind("further reading")
    assert goals >= 0, f"{path.name}: no 'Learning goals' list near the top"
    assert reading > goals, f"{path.name}: no 'Further reading' with the primary sources at the end"
    assert "prerequisite" in text.lower(), f"{path.name}: say what the learner should know first (prerequisites)"


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.name)
def test_at_least_two_exercises_each_with_a_hidden_solution_that_shows_no_answer(path):
    solutions = [cell for cell in code_cells(path) if SOLUTION.search(source(cell))]
    assert len(solutions) >= 2, f"{path.name}: at least two exercises, each with a worked solution"
    for cell in solutions:
        shown = NUMBER.findall(shown_text(cell))
        assert not shown, (f"{path.name}: a solution's output shows {shown[:3]}: the answer is on screen before the "
                           "learner tries; print only that the solution passes the check")


def _tautologies(tree):
    """Asserts that compare an expression with the very same expression: they cannot fail."""
    same = lambda a, b: ast.dump(a) == ast.dump(b)  # noqa: E731
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assert):
            continue
        test = node.test
        if isinstance(test, ast.Compare) and any(same(test.left, right) for right in test.comparators):
            yield node
        elif isinstance(test, ast.Call) and len(test.args) >= 2 and same(test.args[0], test.args[1]):
            yield node  # torch.allclose(a, a), torch.equal(a, a), math.isclose(a, a), ...


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_assert_compares_an_expression_with_itself(path):
    for index, cell in enumerate(code_cells(path)):
        # IPython magics (%pip, !ls) are not Python: each becomes a `pass` at its own indentation.
        text = re.sub(r"^(\s*)[%!].*$", r"\1pass", source(cell), flags=re.MULTILINE)
        for node in _tautologies(ast.parse(text)):
            pytest.fail(f"{path.name} code cell {index}, line {node.lineno}: this assert compares an expression with "
                        "itself, so it cannot fail: compare with an independent reference")


def test_the_tautology_scan_finds_what_it_looks_for():
    caught = list(_tautologies(ast.parse("assert x == x\nassert torch.allclose(f(a), f(a))\nassert f(a) == g(a)")))
    assert [node.lineno for node in caught] == [1, 2]
