r"""A latent-variable model with a nonlinear decoder, and its evidence and posterior by numerical
integration over a grid of :math:`z`.

Introduced in notebook 02 (latent variables and Bayes' rule). With a 1-d latent the integral
:math:`p(x) = \int p(x \mid z) p(z) \, dz` is cheap on a grid, so the exact posterior :math:`p(z \mid x)`
can be drawn for any :math:`x`; the same function on a :math:`d`-dimensional latent shows why this stops
working: the grid has :math:`G^d` points (:math:`G` points per dimension).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from ..objectives import logsumexp_in_chunks


def figure_eight(z: torch.Tensor) -> torch.Tensor:
    r"""The decoder's mean :math:`f(z) = (\sin 2z, \cos z)`: a figure-eight in the plane, (..., 1) => (..., 2).

    The curve crosses itself at the origin: :math:`f(\pi/2) = f(-\pi/2) = (0, 0)`, so an :math:`x` near the origin has
    two equally good explanations and a bimodal posterior. Introduced in notebook 02.
    """
    return torch.cat([torch.sin(2 * z), torch.cos(z)], dim=-1)


class CurveModel(nn.Module):
    r"""A 1-d latent mapped through a fixed curve :math:`f`, plus Gaussian noise:

    .. math::

        p(z) = \mathcal{N}(0, 1), \quad p(x \mid z) = \mathcal{N}(f(z), \sigma^2 I_D), \quad
        f: \mathbb{R} \to \mathbb{R}^D

    (default: ``figure_eight``, :math:`D = 2`). It follows the model protocol (``prior``, ``decode``,
    ``latent_dim``) except ``encode``: the exact posterior has no closed form for a nonlinear :math:`f`,
    which is the point. ``grid_posterior`` computes it numerically. With a linear :math:`f(z) = w z + b` it
    is ``LinearGaussian(w[:, None], b, sigma)``.
    Introduced in notebook 02.
    """

    latent_dim = 1

    def __init__(self, curve: Callable[[torch.Tensor], torch.Tensor] = figure_eight, noise_scale: float = 0.1,
                 dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        if not noise_scale > 0:
            raise ValueError(f"noise_scale must be positive, got {noise_scale}")
        self.curve = curve
        self.noise_scale = noise_scale
        # A buffer, not a constant: the prior follows the model to its dtype and device.
        self.register_buffer("prior_loc", torch.zeros(1, dtype=dtype))

    @property
    def prior(self) -> Distribution:
        r""":math:`p(z) = \mathcal{N}(0, 1)`, event shape (1,)."""
        return Independent(Normal(self.prior_loc, torch.ones_like(self.prior_loc)), 1)

    def decode(self, z: torch.Tensor) -> Distribution:
        r""":math:`p(x \mid z) = \mathcal{N}(f(z), \sigma^2 I_D)`; ``z`` (..., 1) gives batch shape (...), event shape
        (D,)."""
        mean = self.curve(z)  # (..., 1) => (..., D)
        return Independent(Normal(mean, torch.full_like(mean, self.noise_scale)), 1)

    def sample(self, num_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Ancestral sampling: :math:`z \sim p(z)`, then :math:`x \sim p(x \mid z)`. Returns (z (N, 1), x (N, D))."""
        z = self.prior.sample((num_samples,))
        return z, self.decode(z).sample()


def trapezoid_log_weights(grid: torch.Tensor) -> torch.Tensor:
    r"""log of the trapezoid-rule weights of a sorted 1-d grid (G,), so that
    :math:`\int g(z) \, dz \approx \sum_g w_g g(z_g)`: :math:`w_g = (z_{g+1} - z_{g-1}) / 2`, halved spacing at
    the ends. Introduced in notebook 02."""
    if grid.dim() != 1 or len(grid) < 2:
        raise ValueError(f"grid must be a 1-d tensor of at least 2 points, got shape {tuple(grid.shape)}")
    gaps = grid[1:] - grid[:-1]  # (G - 1,)
    if not torch.all(gaps > 0):
        raise ValueError("grid must be strictly increasing")
    weights = torch.zeros_like(grid)
    weights[:-1] += gaps / 2
    weights[1:] += gaps / 2
    return weights.log()


def grid_points(grid: torch.Tensor, latent_dim: int, start: int = 0,
                stop: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Points ``start:stop`` of the tensor-product grid grid x grid x ... (``latent_dim`` times), in
    row-major order, and their log trapezoid weights :math:`\log w = \sum_j \log w_{g_j}`:
    ((N, latent_dim), (N,)).

    The full grid has ``len(grid) ** latent_dim`` points; asking for a slice keeps memory bounded.
    Introduced in notebook 02.
    """
    size = len(grid)
    stop = size**latent_dim if stop is None else stop
    index = torch.arange(start, stop, device=grid.device)  # (N,) flat indices
    powers = size ** torch.arange(latent_dim - 1, -1, -1, device=grid.device)  # (d,) row-major strides
    digits = (index[:, None] // powers) % size  # (N, d): the grid index along each latent dimension
    return grid[digits], trapezoid_log_weights(grid)[digits].sum(dim=-1)


def grid_log_evidence(model: nn.Module, x: torch.Tensor, grid: torch.Tensor,
                      max_batch_elements: int = 2**20) -> torch.Tensor:
    r""":math:`\log p(x)` by numerical integration over a grid of :math:`z`, per example (B,):

    .. math::

        p(x) &= \int p(x \mid z) p(z) \, dz \approx \sum_g w_g \, p(x \mid z_g) \, p(z_g), \\
        \log p(x) &\approx \operatorname{logsumexp}_g \left[\log p(x \mid z_g) + \log p(z_g) + \log w_g\right],

    with trapezoid weights :math:`w_g`. ``grid`` (G,) is the grid along one axis; for a model with
    ``latent_dim`` = :math:`d` the sum runs over the tensor-product grid of :math:`G^d` points, visited in
    chunks of at most ``max_batch_elements`` (grid point, example) pairs and combined with a running
    log-sum-exp. Working in logs matters: :math:`p(x \mid z)` of a single :math:`x` underflows to 0 in
    float64 for most :math:`z`. ``model`` needs ``prior``, ``decode`` and ``latent_dim``; ``x`` has shape
    ``(B, *event_shape)``, with the event shape of :math:`p(x \mid z)`.
    Introduced in notebook 02.
    """
    grid = grid.to(device=x.device, dtype=x.dtype)

    def weighted_log_joint(start: int, stop: int) -> torch.Tensor:
        z, log_w = grid_points(grid, model.latent_dim, start, stop)  # (N, d), (N,)
        # z[:, None] (N, 1, d) broadcasts against the B examples: log p(x|z) has shape (N, B).
        return model.decode(z[:, None]).log_prob(x) + (model.prior.log_prob(z) + log_w)[:, None]

    chunk = max(1, max_batch_elements // x.shape[0])
    return logsumexp_in_chunks(weighted_log_joint, len(grid) ** model.latent_dim, chunk)


def grid_posterior(model: nn.Module, x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    r"""The exact posterior density :math:`p(z \mid x)` at each grid point, by Bayes' rule, shape (B, G):

    .. math::

        p(z_g \mid x) = \frac{p(x \mid z_g) \, p(z_g)}{p(x)}, \quad p(x) = \sum_g w_g \, p(x \mid z_g) \, p(z_g)

    on the same grid, so that :math:`\sum_g w_g \, p(z_g \mid x) = 1` with the trapezoid weights :math:`w_g`. For a
    1-d latent only.
    Introduced in notebook 02.
    """
    if model.latent_dim != 1:
        raise ValueError(f"grid_posterior is for a 1-d latent, got latent_dim={model.latent_dim}")
    grid = grid.to(device=x.device, dtype=x.dtype)
    z = grid[:, None]  # (G, 1)
    log_joint = model.decode(z[:, None]).log_prob(x) + model.prior.log_prob(z)[:, None]  # (G, B)
    # The evidence from the same joint (what grid_log_evidence computes), so the grid is decoded once.
    log_evidence = torch.logsumexp(log_joint + trapezoid_log_weights(grid)[:, None], dim=0)  # (B,)
    log_posterior = log_joint - log_evidence  # Bayes' rule, in logs
    return log_posterior.exp().T  # (G, B) => (B, G)

