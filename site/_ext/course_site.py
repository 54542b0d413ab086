"""What the course site adds to Sphinx and myst-nb (loaded by site/conf.py).

- **The course pages.** Before Sphinx reads its sources, every ``notebooks/*.ipynb`` is copied to
  ``site/course/`` (ignored by git), so a new notebook becomes a page with no change here. The copies are
  never executed: myst-nb renders their committed outputs. Each copy differs from its notebook in what a
  web page needs: the Open-in-Colab badge is a local image (Colab's own is on Colab's host), a download
  link to the committed .ipynb sits beside it, solution cells hidden in Jupyter (``source_hidden``) start
  folded, and every ipywidget output is replaced by a static picture of its saved state (below).
- **Static widgets.** A notebook saved from Jupyter holds the state of each widget it displayed; a web page
  would need the widget manager's JavaScript, from a CDN, to draw it. Instead, the saved state is drawn
  here as plain HTML: a tqdm progress bar shows its final bar and counts, a latent explorer shows its
  decoded image and where each slider was left (the sliders do not move: the page says so).
- **Notebook back-links.** Docstrings say where an object is introduced ("Introduced in notebook 04"); in
  the API reference each such mention links to that notebook's page.
- **The gallery.** ``{course-figures}`` shows every figure that ``figures/README.md`` lists, with its caption.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
FIGURES = ROOT / "figures"
COURSE_DIR = "course"  # the copies, under the Sphinx source directory
LOCAL_BADGE = "/images/colab-badge.svg"  # Sphinx reads a leading "/" as the source directory
COLAB_BADGE = re.compile(
    r"\[!\[(?P<alt>[^\]]*)\]\(https://colab\.research\.google\.com/assets/colab-badge\.svg\)\]"
    r"\((?P<target>https://colab\.research\.google\.com/[^)\s]+)\)")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


# --- the course pages -------------------------------------------------------------------------------

def notebook_pages() -> dict[str, str]:
    """Each notebook's two-digit number -> its page's document name, e.g. "04" -> "course/04_elbo"."""
    return {path.name[:2]: f"{COURSE_DIR}/{path.stem}" for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))}


def badge_line(name: str, colab_target: str, alt: str = "Open In Colab") -> str:
    """The local Colab badge and, beside it, a link that downloads the committed notebook."""
    return (f"[![{alt}]({LOCAL_BADGE})]({colab_target}) &nbsp; "
            f"{{download}}`Download the notebook (.ipynb) <../../notebooks/{name}>`")


def page_notebook(notebook: dict[str, Any], name: str, colab_url: str) -> dict[str, Any]:
    """The copy of ``notebook`` that becomes its page (see the module docstring); ``notebook`` is not changed."""
    page = json.loads(json.dumps(notebook))
    widget_state = page["metadata"].pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    badged = False
    for cell in page["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and not badged and COLAB_BADGE.search(source):
            cell["source"] = COLAB_BADGE.sub(
                lambda match: badge_line(name, match["target"], match["alt"]), source, count=1)
            badged = True
        if cell["cell_type"] != "code":
            continue
        hidden = cell["metadata"].get("jupyter", {})
        tags = cell["metadata"].setdefault("tags", [])
        for key, tag in (("source_hidden", "hide-input"), ("outputs_hidden", "hide-output")):
            if hidden.get(key) and tag not in tags:
                tags.append(tag)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data:
                model_id = data.pop(WIDGET_VIEW)["model_id"]
                data["text/html"] = static_widget(model_id, widget_state, name, "".join(data.get("text/plain", "")))
    if not badged:  # a notebook without its badge still gets one, after its title
        first = page["cells"][0]
        lines = "".join(first["source"]).split("\n", 1)
        first["source"] = "\n\n".join([lines[0], badge_line(name, f"{colab_url}/{name}"), *lines[1:]])
    return page


def write_course_pages(app: Sphinx, config: Any) -> None:
    """Mirror notebooks/ into the source directory's course/: write changed pages only (so an unchanged
    notebook is not read again) and remove pages whose notebook is gone."""
    target = Path(app.srcdir) / COURSE_DIR
    target.mkdir(exist_ok=True)
    wanted = set()
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        wanted.add(path.name)
        text = json.dumps(page_notebook(json.loads(path.read_text()), path.name, config.course_colab_url),
                          indent=1, ensure_ascii=False) + "\n"
        page = target / path.name
        if not page.exists() or page.read_text() != text:
            page.write_text(text)
    for stale in target.glob("*.ipynb"):
        if stale.name not in wanted:
            stale.unlink()


# --- static widgets ---------------------------------------------------------------------------------

BOXES = {"HBoxModel": "hbox", "VBoxModel": "vbox", "BoxModel": "vbox", "GridBoxModel": "hbox"}


class UnknownWidget(Exception):
    pass


def static_widget(model_id: str, models: dict[str, Any], notebook: str, text: str) -> str:
    """HTML that shows the widget ``model_id`` as its saved ``models`` state left it. A widget without saved
    state, or of a kind not drawn here, shows its text form, and the build warns (``-W`` makes it fail)."""
    try:
        body, interactive = draw(model_id, models)
    except UnknownWidget as missing:
        logger.warning(f"{notebook}: widget {missing} cannot be drawn statically; showing its text form "
                       "(save the notebook with its widget state, or teach site/_ext/course_site.py the widget)")
        return f'<pre class="widget-static-text">{html.escape(text)}</pre>'
    note = ('<p class="widget-static-note">A snapshot of an interactive widget: run the notebook (Jupyter or '
            'Colab) to move it.</p>') if interactive else ""
    return f'<div class="widget-static">{body}</div>{note}'


def draw(model_id: str, models: dict[str, Any]) -> tuple[str, bool]:
    """(HTML for one widget and its children, whether any of them is a control)."""
    model = models.get(model_id)
    if model is None:
        raise UnknownWidget(f"{model_id} (no saved state)")
    kind, state = model["model_name"], model["state"]
    description = state.get("description", "")
    label = f'<span class="widget-static-label">{html.escape(description)}</span>' if description else ""
    if kind in BOXES:
        drawn = [draw(ref.removeprefix("IPY_MODEL_"), models) for ref in state.get("children", [])]
        inner = "".join(part for part, _ in drawn)
        return f'<div class="widget-static-{BOXES[kind]}">{inner}</div>', any(control for _, control in drawn)
    if kind in ("HTMLModel", "HTMLMathModel"):
        return f'{label}<span class="widget-static-html">{state.get("value", "")}</span>', False
    if kind == "LabelModel":
        return f'<span class="widget-static-html">{html.escape(state.get("value", ""))}</span>', False
    if kind in ("FloatProgressModel", "IntProgressModel"):
        style = state.get("bar_style") or "info"
        return (f'{label}<progress class="widget-static-progress {style}" value="{state.get("value", 0)}" '
                f'max="{state.get("max", 100)}"></progress>'), False
    if kind in ("FloatSliderModel", "IntSliderModel"):
        value = state.get("value", 0)
        spec = state.get("readout_format") or (".2f" if kind == "FloatSliderModel" else "d")
        try:
            readout = format(value, spec)
        except (TypeError, ValueError):
            readout = str(value)
        return (f'<div class="widget-static-slider">{label}<input type="range" disabled min="{state.get("min", 0)}" '
                f'max="{state.get("max", 100)}" step="{state.get("step", 1)}" value="{value}" aria-label="'
                f'{html.escape(description)}"><span class="widget-static-readout">{readout}</span></div>'), True
    if kind == "ButtonModel":
        return f'<button class="widget-static-button" disabled>{html.escape(description)}</button>', True
    if kind == "ToggleButtonsModel":
        chosen = state.get("index")
        buttons = "".join(f'<button class="widget-static-button{" active" if i == chosen else ""}" disabled>'
                          f'{html.escape(str(option))}</button>' for i, option in enumerate(state.get("_options_labels", [])))
        return f'<div class="widget-static-hbox">{label}{buttons}</div>', True
    if kind == "ImageModel":
        buffers = {tuple(buffer["path"]): buffer["data"] for buffer in model.get("buffers", [])}
        if ("value",) not in buffers:
            raise UnknownWidget(f"{model_id} (an Image with no saved picture)")
        size = "".join(f' {key}="{html.escape(str(state[key]))}"' for key in ("width", "height") if state.get(key))
        return (f'<img class="widget-static-image" alt="{html.escape(description or "widget image")}"{size} '
                f'src="data:image/{state.get("format", "png")};base64,{buffers[("value",)]}">'), False
    raise UnknownWidget(f"{model_id} ({kind})")


# --- notebook back-links in docstrings --------------------------------------------------------------

NOTEBOOK_MENTION = re.compile(r"\b(?P<word>notebooks?) (?P<numbers>\d\d(?:(?:, | and | or |–|-)\d\d)*)\b")


def link_notebooks(line: str, pages: dict[str, str]) -> str:
    """Turn "notebook 04" into a link to its page, and each number of "notebooks 06 and 07" into one;
    mentions inside ``literals`` and numbers with no notebook are left as they are."""
    def link(match: re.Match) -> str:
        if line[:match.start()].count("``") % 2:
            return match[0]
        numbers = re.split(r"(, | and | or |–|-)", match["numbers"])
        if len(numbers) == 1:
            number = numbers[0]
            return f":doc:`{match[0]} </{pages[number]}>`" if number in pages else match[0]
        linked = [f":doc:`{part} </{pages[part]}>`" if part in pages else part for part in numbers]
        return f"{match['word']} " + "".join(linked)
    return NOTEBOOK_MENTION.sub(link, line)


def link_docstring(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """The docstrings are reST (equations as ``:math:`` and ``.. math::``, typeset by MathJax): only their
    notebook mentions are changed, into links."""
    pages = notebook_pages()
    lines[:] = [link_notebooks(line, pages) for line in lines]


# --- the gallery ------------------------------------------------------------------------------------

FIGURE_ROW = re.compile(r"^\|\s*`(?P<file>[^`]+\.png)`\s*\|\s*(?P<caption>.+?)\s*\|\s*$")


class CourseFigures(SphinxDirective):
    """Every figure in figures/README.md's table, in its order, with its caption."""

    def run(self) -> list[nodes.Node]:
        index = FIGURES / "README.md"
        self.env.note_dependency(str(index))
        rows = [match for line in index.read_text().splitlines() if (match := FIGURE_ROW.match(line))]
        if not rows:
            raise self.error(f"{index} lists no figures (rows like | `name.png` | caption |)")
        figures = []
        for row in rows:
            if not (FIGURES / row["file"]).exists():
                raise self.error(f"figures/README.md lists {row['file']}, which figures/ does not have")
            figure = nodes.figure(classes=["course-figure"])
            # A leading "/" is the source directory (site/), whichever page holds the gallery.
            figure += nodes.image(uri=f"/../figures/{row['file']}", alt=row["caption"])
            figure += nodes.caption(text=row["caption"])
            figures.append(figure)
        return figures


def skip_field_aliases(app: Sphinx, what: str, name: str, obj: Any, skip: bool, options: Any) -> bool | None:
    """Leave out a NamedTuple's per-field "Alias for field number N": the class docstring describes the fields."""
    return True if (getattr(obj, "__doc__", None) or "").startswith("Alias for field number") else None


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("course_colab_url", "", "env")
    app.connect("config-inited", write_course_pages)
    app.connect("autodoc-process-docstring", link_docstring)
    app.connect("autodoc-skip-member", skip_field_aliases)
    app.add_directive("course-figures", CourseFigures)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
