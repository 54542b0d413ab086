"""Figures: image grids, latent scatters, learning curves, the decoded manifold and traversals.

Introduced in notebook 00 (image grid), notebook 01 (latent scatter, curves), notebook 06 (KL per
dimension), notebook 07 (manifold, rows of decoded codes) and notebook 09 (the rate-distortion plane); used
throughout, and by
``python -m vae_course figures``.

Every function draws on an ``ax`` (a new figure when none is given) and returns it, so figures can be
composed side by side. In a notebook, end the cell with ``plt.show()``: it returns None, so no
``Text(...)`` or ``<Axes ...>`` line follows the figure (a trailing ``;`` does not suppress it under
nbval, which runs cells without storing history).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.offsetbox import AnnotationBbox, OffsetImage
from matplotlib.patches import Circle
from torchvision.utils import make_grid

from .latent import ACTIVITY_THRESHOLD, normal_grid
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
                   ax: Axes | None = None, size: float = 4.0, prior_mass: float | None = None) -> Axes:
    r"""Scatter 2-d codes (N, 2) coloured by digit label (N,), with a legend of the ten digits.

    ``prior_mass=0.95`` also draws, dashed, the circle inside which :math:`p(z) = \mathcal{N}(0, I)` puts
    that mass: radius :math:`r` with

    .. math::

        P(\|z\| < r) = 1 - e^{-r^2 / 2} = \mathtt{prior\_mass},

    on equal axes so that it stays a circle.
    """
    codes, labels = codes.detach().cpu(), labels.detach().cpu()
    if codes.dim() != 2 or codes.shape[1] != 2:
        raise ValueError(f"scatter_latent draws 2-d codes of shape (N, 2), got {tuple(codes.shape)}")
    ax = _axes(ax, (5.0, 5.0))
    colours = plt.get_cmap("tab10")
    for digit in range(10):
        chosen = labels == digit
        ax.scatter(codes[chosen, 0], codes[chosen, 1], s=size, color=colours(digit), label=str(digit))
    if prior_mass is not None:
        if not 0 < prior_mass < 1:
            raise ValueError(f"prior_mass must lie in (0, 1), got {prior_mass!r}")
        radius = math.sqrt(-2 * math.log(1 - prior_mass))
        ax.add_patch(Circle((0, 0), radius, fill=False, linestyle="--", color="black",
                            label=f"{prior_mass:.0%} of p(z)"))
        ax.set_aspect("equal", adjustable="datalim")
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


@torch.no_grad()
def show_manifold(model: torch.nn.Module, num_per_side: int = 15, title: str | None = None,
                  ax: Axes | None = None) -> Axes:
    r"""The decoded manifold of a 2-d latent model: the mean image of :math:`p(x \mid z)` for every
    :math:`z` of ``latent.normal_grid(num_per_side)``, placed where :math:`z` lies, with the :math:`z` values
    on the axes."""
    if not hasattr(model, "prior"):
        raise TypeError(f"show_manifold draws a VAE, whose grid follows the prior p(z); {type(model).__name__} "
                        "has no prior: decode a grid of codes of your own instead")
    if model.latent_dim != 2:
        raise ValueError(f"show_manifold draws a model with a 2-d latent space, got latent_dim={model.latent_dim}")
    grid = normal_grid(num_per_side)  # (n * n, 2), top row first
    images = model.decode(grid.to(next(model.parameters()))).mean  # the model's dtype and device; (n * n, 1, 28, 28)
    ax = _axes(ax, (7.0, 7.0))
    show_images(images, nrow=num_per_side, title=title, ax=ax)
    ax.set_axis_on()
    values = grid[:num_per_side, 0]  # z_1 along the first row, left to right
    centres = [2 + 30 * i + 14 for i in range(num_per_side)]  # 28-pixel images with 2-pixel padding
    labels = [f"{v:.1f}" for v in values.tolist()]
    ax.set_xticks(centres, labels, fontsize="small", rotation=90)
    ax.set_yticks(centres, labels[::-1], fontsize="small")  # z_2 decreases down the rows
    ax.set_xlabel("$z_1$ (equal prior mass between ticks)")
    ax.set_ylabel("$z_2$")
    return ax


def show_traversal(images: torch.Tensor, row_labels: Sequence[str] | None = None,
                   column_labels: Sequence[str] | None = None, title: str | None = None,
                   ax: Axes | None = None) -> Axes:
    """Rows of decoded images (rows, steps, 1, 28, 28): one traversal, sweep or interpolation per
    row, with an optional label per row (left) and per column (below)."""
    if images.dim() != 5:
        raise ValueError(f"show_traversal draws (rows, steps, 1, 28, 28), got {tuple(images.shape)}")
    rows, steps = images.shape[:2]
    ax = _axes(ax, (steps * 0.6 + 1.0, rows * 0.6 + 0.6))
    show_images(images.flatten(end_dim=1), nrow=steps, title=title, ax=ax)
    centres = [2 + 30 * i + 14 for i in range(max(rows, steps))]
    if row_labels is not None or column_labels is not None:
        ax.set_axis_on()
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_yticks(centres[:rows], list(row_labels) if row_labels is not None else [])
        ax.set_xticks(centres[:steps], list(column_labels) if column_labels is not None else [])
        ax.tick_params(length=0)
    return ax


def _bars_by_dimension(values: torch.Tensor, order: torch.Tensor, colour: str, ax: Axes | None) -> Axes:
    """One bar per latent dimension, in ``order``, each labelled with the dimension's index."""
    ax = _axes(ax, (max(4.0, 0.35 * len(values) + 1.0), 3.0))
    ax.bar(range(len(values)), values[order].tolist(), color=colour)
    ax.set_xticks(range(len(values)), [str(d) for d in order.tolist()], fontsize="small")
    return ax


def plot_kl_per_dimension(kl: torch.Tensor, title: str | None = None, ax: Axes | None = None) -> Axes:
    r"""Bars of the average :math:`\mathrm{KL}(q(z_d \mid x) \,\|\, p(z_d))` of each latent dimension
    :math:`d` (``latent.kl_per_dimension``), in nats, from the largest to the smallest, labelled with the dimension's
    index."""
    kl = kl.detach().cpu()
    ax = _bars_by_dimension(kl, torch.argsort(kl, descending=True), "C0", ax)
    ax.set_xlabel("latent dimension d (sorted by KL)")
    ax.set_ylabel("KL per image (nats)")
    if title:
        ax.set_title(title)
    return ax


def plot_unit_activity(activity: torch.Tensor, order: torch.Tensor | None = None, threshold: float = ACTIVITY_THRESHOLD,
                       title: str | None = None, ax: Axes | None = None) -> Axes:
    r"""Bars of each latent unit's activity :math:`\mathrm{Var}_x(\mathbb{E}_q[z_d])` (``latent.unit_activity``)
    on a log scale, in the given ``order`` of dimensions (e.g. the order of ``plot_kl_per_dimension``), with the
    threshold dashed."""
    activity = activity.detach().cpu()
    order = torch.arange(len(activity)) if order is None else order.detach().cpu()
    ax = _bars_by_dimension(activity, order, "C1", ax)
    ax.axhline(threshold, color="black", linestyle="--", label=f"threshold {threshold:g}")
    ax.set_yscale("log")
    ax.set_xlabel("latent dimension d")
    ax.set_ylabel("activity $A_d$ (log scale)")
    ax.legend()
    if title:
        ax.set_title(title)
    return ax


def plot_rate_distortion(rates: Sequence[float], distortions: Sequence[float], labels: Sequence[str] | None = None,
                         images: Sequence[torch.Tensor] | None = None, levels: Sequence[float] | None = None,
                         title: str | None = None, ax: Axes | None = None, zoom: float = 0.9) -> Axes:
    r"""Models as points in the rate-distortion plane (Alemi et al. 2018), with dashed lines of constant
    :math:`-\mathrm{ELBO}`:

    .. math::

        -\mathrm{ELBO} = D + R = c \quad\Longleftrightarrow\quad D = c - R,

    lines of slope :math:`-1`. Point :math:`i` is at (``rates[i]``, ``distortions[i]``), in nats per image;
    the points are joined in order of rate. ``labels`` writes a label beside each point (e.g. its
    :math:`\beta`). ``images`` gives each point a thumbnail, a grid of images (k, 1, 28, 28) in [0, 1] such
    as a few reconstructions, joined to its point by a thin line: in order of rate, alternately above-right
    and below-left of the points, so that the neighbours' thumbnails on a falling curve do not overlap. ``levels`` are the
    values :math:`c` of the dashed lines; by default five round values spanning the points' :math:`D + R`.
    A point on a lower line has a better ELBO; along one line, models trade rate for distortion one for
    one. Introduced in notebook 09.
    """
    rates = [float(r) for r in rates]
    distortions = [float(d) for d in distortions]
    if len(rates) != len(distortions) or not rates:
        raise ValueError(f"give one distortion per rate, got {len(rates)} rates and {len(distortions)} distortions")
    for name, values in (("labels", labels), ("images", images)):
        if values is not None and len(values) != len(rates):
            raise ValueError(f"give one of {name} per point: {len(values)} for {len(rates)} points")
    ax = _axes(ax, (8.0, 5.5))
    order = sorted(range(len(rates)), key=rates.__getitem__)
    ax.plot([rates[i] for i in order], [distortions[i] for i in order], color="C0", linewidth=1, zorder=2)
    ax.scatter(rates, distortions, color="C0", zorder=3, label="models")
    # Limits from the points, with room for the labels and thumbnails, fixed before the lines are drawn.
    r_span = max(rates) - min(rates) or 1.0
    d_span = max(distortions) - min(distortions) or 1.0
    ax.set_xlim(min(rates) - 0.15 * r_span, max(rates) + 0.25 * r_span)
    ax.set_ylim(min(distortions) - 0.15 * d_span, max(distortions) + 0.25 * d_span)
    (r_low, r_high), (d_low, d_high) = ax.get_xlim(), ax.get_ylim()
    if levels is None:
        totals = [r + d for r, d in zip(rates, distortions)]
        step = _round_step((max(totals) - min(totals)) / 4 or 1.0)
        first = math.floor(min(totals) / step) * step
        levels = [first + k * step for k in range(6)]
    for k, level in enumerate(levels):
        ax.plot([r_low, r_high], [level - r_low, level - r_high], color="grey", linestyle="--", linewidth=0.8,
                zorder=1, label="D + R = const (−ELBO)" if k == 0 else None)
        # The value of the line, where it crosses the top or the right edge of the plot.
        r_text = min(r_high, level - d_low) if level - d_high < r_low else level - d_high
        if r_low <= r_text <= r_high and d_low <= level - r_text <= d_high:
            ax.annotate(f"{level:g}", (r_text, level - r_text), fontsize="x-small", color="grey",
                        xytext=(-2, -2), textcoords="offset points", ha="right", va="top")
    ax.set_xlim(r_low, r_high)
    ax.set_ylim(d_low, d_high)
    if labels is not None:
        for r, d, text in zip(rates, distortions, labels):
            ax.annotate(text, (r, d), xytext=(5, -12), textcoords="offset points", fontsize="small")
    if images is not None:
        for rank, i in enumerate(order):
            thumbnails = images[i]
            grid = make_grid(thumbnails.detach().cpu().float().clamp(0, 1), nrow=len(thumbnails), padding=1,
                             pad_value=1.0)  # (k, 1, 28, 28) => (3, 30, 29 k + 1)
            box = OffsetImage(grid.permute(1, 2, 0).numpy(), zoom=zoom)
            ax.add_artist(AnnotationBbox(box, (rates[i], distortions[i]), xybox=(40, 28) if rank % 2 == 0 else (-45, -32), boxcoords="offset points",
                                         frameon=True, pad=0.1, arrowprops={"arrowstyle": "-", "color": "grey"}))
    ax.set_xlabel("rate R = KL(q(z|x) || p(z)) (nats per image)")
    ax.set_ylabel("distortion D = −E_q[log p(x|z)] (nats per image)")
    ax.legend(loc="upper right")
    if title:
        ax.set_title(title)
    return ax


def _round_step(span: float) -> float:
    """1, 2 or 5 times a power of ten, the first at least ``span``."""
    power = 10 ** math.floor(math.log10(span))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= span)
