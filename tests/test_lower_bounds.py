"""The oldest versions pyproject.toml promises are the ones ``make test-min`` installs and tests.

tools/lower_bounds.py turns each ``name>=version`` of pyproject.toml into the pin ``name==version``. Under
``make test-min`` (which sets VAE_COURSE_TEST_MIN=1) the installed versions must equal those pins, so the
minimum-versions run cannot quietly test newer releases.
"""

from __future__ import annotations

import importlib.util
import os
from importlib.metadata import version
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "tools" / "lower_bounds.py"


def load_lower_bounds():
    spec = importlib.util.spec_from_file_location("lower_bounds", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lower_bounds = load_lower_bounds()


def test_each_lower_bound_becomes_an_exact_pin():
    assert lower_bounds.pins(["torch>=2.0.1", "numpy >= 1.23.5", "tqdm>=4.62.3,<5"]) == [
        "torch==2.0.1", "numpy==1.23.5", "tqdm==4.62.3"]


@pytest.mark.parametrize("requirement", ["torch", "torch<3", "torch==2.0.1", "torch~=2.0", "torch>2.0"])
def test_a_dependency_without_a_lower_bound_is_refused(requirement):
    with pytest.raises(ValueError, match="no lower bound"):
        lower_bounds.pins([requirement])


def test_every_declared_dependency_has_a_lower_bound():
    pytest.importorskip("tomllib")
    declared = lower_bounds.declared()
    assert len(lower_bounds.pins(declared)) == len(declared) > 0


@pytest.mark.skipif(os.environ.get("VAE_COURSE_TEST_MIN") != "1", reason="only under make test-min")
def test_installed_versions_are_the_lower_bounds():
    wrong = {}
    for pin in lower_bounds.pins(lower_bounds.declared()):
        name, oldest = pin.split("==")
        if version(name).split("+")[0] != oldest:
            wrong[name] = f"{version(name)} installed, pyproject.toml's lower bound is {oldest}"
    assert not wrong, wrong
