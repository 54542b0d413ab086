"""Print pyproject.toml's dependencies pinned to their lower bounds: ``torch>=2.0.1`` becomes ``torch==2.0.1``.

``make test-min`` installs the package under these pins as pip constraints, so the oldest versions the
package promises are the ones it is tested with, and the bounds are written down once, in pyproject.toml.
A dependency without a ``>=`` bound is an error: there would be no oldest version to test.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
LOWER_BOUND = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*>=\s*([0-9][0-9.]*)\s*(?:,\s*<[^,;]+)?$")


def pins(dependencies: list[str]) -> list[str]:
    """``name==lower`` for each ``name>=lower`` (an upper bound ``,<x`` beside it is allowed)."""
    pinned = []
    for requirement in dependencies:
        match = LOWER_BOUND.match(requirement)
        if match is None:
            raise ValueError(f"{requirement!r} has no lower bound of the form 'name>=version': "
                             "the minimum-versions test needs one for every dependency")
        pinned.append(f"{match.group(1)}=={match.group(2)}")
    return pinned


def declared() -> list[str]:
    """The ``[project] dependencies`` of pyproject.toml, as written there."""
    import tomllib  # Python >= 3.11, as the minimum-versions environment is

    return tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]


if __name__ == "__main__":
    sys.stdout.write("".join(f"{pin}\n" for pin in pins(declared())))
