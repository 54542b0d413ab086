"""How long the course takes to run: every notebook executed and checked the way ``make test`` does it.

Run ``python benchmarks/course_runtime.py`` (all of ``notebooks/*.ipynb``) or name notebooks to time.

Each notebook is checked by its own ``python -m pytest --nbval --nbval-current-env NOTEBOOK`` in a
subprocess: a fresh kernel running this environment's interpreter (as pyproject.toml sets for
``make test``), started in the notebook's folder, every cell executed in order and its output
compared with the committed one (strict nbval). The wall time of that command is the notebook's
time, pytest's own start-up included, as ``make test`` pays it. The budget on a 2-core CPU is 60 s per notebook and
480 s for the whole course (twelve notebooks); the table flags what exceeds it. The exit status is 1 when a notebook
fails its check (timing never fails anything: machines are noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
NOTEBOOK_BUDGET_S = 60
COURSE_BUDGET_S = 480


def run_notebook(path: Path) -> tuple[float, bool, str]:
    """(wall seconds, passed, pytest's last line) for one strict nbval check of ``path``."""
    command = [sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", "-q", "-p", "no:cacheprovider",
               str(path)]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    lines = done.stdout.strip().splitlines()
    return seconds, done.returncode == 0, lines[-1] if lines else done.stderr.strip()[-200:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: notebooks/*.ipynb)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write (default: a new file in benchmarks/results/)")
    args = parser.parse_args(argv)
    notebooks = [path.resolve() for path in args.notebooks] or sorted((ROOT / "notebooks").glob("*.ipynb"))

    print(f"torch {torch.__version__} | {os.cpu_count()} logical CPUs | threads {torch.get_num_threads()}\n")
    print(f"{'notebook':40}{'seconds':>9}  result")
    rows = []
    for path in notebooks:
        seconds, passed, summary = run_notebook(path)
        flags = [] if passed else [f"FAILED ({summary})"]
        if seconds > NOTEBOOK_BUDGET_S:
            flags.append(f"over the {NOTEBOOK_BUDGET_S} s budget")
        print(f"{path.name:40}{seconds:>9.1f}  {'; '.join(flags) or 'passed'}", flush=True)
        rows.append({"notebook": path.name, "seconds": seconds, "passed": passed})
    total = sum(row["seconds"] for row in rows)
    over = f"  over the {COURSE_BUDGET_S} s budget" if total > COURSE_BUDGET_S else ""
    print(f"{'total':40}{total:>9.1f}{over}")

    out = args.out or RESULTS / f"course_runtime_{datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "course_runtime",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "notebooks": rows,
        "total_seconds": total,
    }, indent=2) + "\n")
    print(f"\nwritten to {out}")
    return 0 if all(row["passed"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
