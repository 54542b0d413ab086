"""``python -m vae_course figures``: every figure regenerated from nothing, and the README's gallery shows
exactly the figures the package writes (figures/ is produced by the package, never by hand)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

import vae_course.__main__ as cli
from vae_course.figures import CAPTIONS

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_figures_command_writes_every_figure_and_an_index(tmp_path, capsys, mnist_train, mnist_test):
    out = tmp_path / "new" / "figures"  # does not exist yet: the command starts from nothing
    cli.main(["figures", "--out", str(out), "--epochs", "1", "--epochs-2d", "1", "--num-train", "256",
              "--num-test", "100", "--device", "cpu"])
    written = sorted(path.name for path in out.iterdir())
    assert written == sorted([*CAPTIONS, "README.md"])
    for name in CAPTIONS:
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.width > 100 and image.height > 100, name
    index = (out / "README.md").read_text()
    assert all(f"`{name}`" in index for name in CAPTIONS)
    assert "VAE(20) and CVAE(2) trained 1 epochs" in index and "first 256 used" in index, "the index states what was trained"
    assert f"wrote {len(CAPTIONS)} figures" in capsys.readouterr().out


def test_committed_figures_are_the_ones_the_package_writes():
    committed = sorted(path.name for path in (ROOT / "figures").glob("*.png"))
    assert committed == sorted(CAPTIONS), "run `make figures` to regenerate figures/"


def test_readme_gallery_shows_every_figure_with_a_caption():
    readme = (ROOT / "README.md").read_text()
    shown = re.findall(r"!\[[^\]]+\]\(figures/([\w.]+\.png)\)", readme)
    assert sorted(shown) == sorted(CAPTIONS), "the README gallery should show each figure exactly once"
