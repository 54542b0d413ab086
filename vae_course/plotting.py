"""Figures: image grids, latent scatters and learning curves, in matplotlib.

Introduced in notebook 00 (image grid) and notebook 01 (latent scatter, curves); used throughout.

Every function draws on an ``ax`` (a new figure when none is given) and returns it, so figures can be
composed side by side. In a notebook, end the cell with ``plt.show()``: it returns None, so no
``Text(...)`` or ``<Axes ...>`` line follows the figure (a trailing ``;`` does not suppress it under
nbval, which runs cells without storing history).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from torchvision.utils import make_grid

from .training import History


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def show_images(images: torch.Tensor, nrow: int = 16, title: str | None = None, ax: Axes | None = None) -> Axes:
    """Draw a batch of images (N, 1, 28, 28), values in [0, 1], as one grid with ``nrow`` per row."""
    images = images.detach().cpu().float().clamp(0, 1)
    rows = -(-len(images) // nrow)  # ceiling division
    ax = _axes(ax, (min(len(images), nrow) * 0.6, rows * 0.6 + 0.4))
    grid = make_grid(images, nrow=nrow, padding=2, pad_value=1.0)  # (N, 1, 28, 28) => (3, H, W)
    ax.imshow(grid.permute(1, 2, 0).numpy())  # channels last for matplotlib
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def scatter_latent(codes: torch.Tensor, labels: torch.Tensor, title: str | None = None,
                   ax: Axes | None = None, size: float = 4.0) -> Axes:
    """Scatter 2-d codes (N, 2) coloured by digit label (N,), with a legend of the ten digits."""
    codes, labels = codes.detach().cpu(), labels.detach().cpu()
    if codes.dim() != 2 or codes.shape[1] != 2:
        raise ValueError(f"scatter_latent draws 2-d codes of shape (N, 2), got {tuple(codes.shape)}")
    ax = _axes(ax, (5.0, 5.0))
    colours = plt.get_cmap("tab10")
    for digit in range(10):
        chosen = labels == digit
        ax.scatter(codes[chosen, 0], codes[chosen, 1], s=size, color=colours(digit), label=str(digit))
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.legend(title="digit", markerscale=3, fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    if title:
        ax.set_title(title)
    return ax


def plot_curves(history: History, metrics: Sequence[str] = ("neg_elbo",), title: str | None = None,
                ax: Axes | None = None) -> Axes:
    """Per-epoch train (solid) and test (dashed) curves of ``metrics`` from a ``History``."""
    ax = _axes(ax, (6.0, 3.5))
    epochs = range(1, history.epochs + 1)
    for index, name in enumerate(metrics):
        colour = f"C{index}"
        ax.plot(epochs, history.train[name], color=colour, marker="o", label=f"train {name}")
        if name in history.test:
            ax.plot(epochs, history.test[name], color=colour, marker="o", linestyle="--", label=f"test {name}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats per image")
    ax.legend()
    if title:
        ax.set_title(title)
    return ax
