r"""The latent space of a trained VAE: which dimensions it uses, and codes to decode.

Introduced in notebook 06 (per-dimension KL, active units) and notebook 07 (manifold grid, sweeps,
traversals, interpolation). Every code function works on codes alone and returns codes, shape
(steps, latent_dim); decode them with ``model.decode(codes).mean``. So each of :math:`\mu` and
:math:`\sigma` is applied exactly where the docstring says, once.
"""

from __future__ import annotations

import torch
from torch.distributions import Distribution, Normal, kl_divergence

from ._checks import positive_int
from .objectives import GenerativeModel, diagonal_normal

ACTIVITY_THRESHOLD = 0.01  # Burda et al. (2015): a unit is active when Var_x(E_q[z_d]) > 0.01


@torch.no_grad()
def kl_per_dimension(model: GenerativeModel, x: torch.Tensor) -> torch.Tensor:
    r"""The rate split by latent dimension, averaged over the images :math:`x`: shape (latent_dim,),

    .. math::

        \mathrm{KL}_d = \operatorname{mean}_x \mathrm{KL}(q(z_d \mid x) \,\|\, p(z_d)),

    summing to the average rate :math:`\mathrm{KL}(q(z \mid x) \,\|\, p(z))`, because a diagonal Gaussian
    :math:`q` and a standard normal prior factorise over dimensions. A dimension with :math:`\mathrm{KL}_d`
    near 0 carries no information about :math:`x`: :math:`q(z_d \mid x) = p(z_d)` for every image, and the
    decoder learns to ignore it ("posterior collapse" of that unit).
    """
    q = diagonal_normal(model.encode(x))  # batch shape (B, latent_dim)
    return kl_divergence(q, diagonal_normal(model.prior)).mean(dim=0)  # (B, latent_dim) => (latent_dim,)


@torch.no_grad()
def unit_activity(model: GenerativeModel, x: torch.Tensor) -> torch.Tensor:
    r"""How much each latent unit's posterior mean moves with the image: shape (latent_dim,),

    .. math::

        A_d = \mathrm{Var}_x\left(\mathbb{E}_{q(z \mid x)}[z_d]\right),

    the activity statistic of Burda et al. (2015). A unit whose mean stays put whatever the image is
    unused; ``active_units`` counts the units with :math:`A_d` above a threshold.
    """
    if x.shape[0] < 2:
        raise ValueError("unit_activity needs at least 2 images: it is a variance over images")
    return model.encode(x).mean.var(dim=0)  # (B, latent_dim) => (latent_dim,)


def active_units(model: GenerativeModel, x: torch.Tensor, threshold: float = ACTIVITY_THRESHOLD) -> int:
    """The number of latent units with ``unit_activity`` above ``threshold`` (0.01, as Burda et al.)."""
    return int((unit_activity(model, x) > threshold).sum())


def normal_grid(num_per_side: int, quantile: float = 0.05) -> torch.Tensor:
    r"""A ``num_per_side`` x ``num_per_side`` grid of 2-d codes, equally spaced in probability under
    :math:`\mathcal{N}(0, 1)`:

    .. math::

        z_i = \Phi^{-1}(p_i),

    with :math:`p_i` evenly spaced from ``quantile`` to 1 - ``quantile``, so each cell of the grid holds the
    same prior mass along each axis. Shape ``(num_per_side**2, 2)``, in reading order for an image grid: the
    first row has the largest :math:`z_2` (top), :math:`z_1` grows to the right.
    """
    positive_int("num_per_side", num_per_side, minimum=2)
    if not 0 < quantile < 0.5:
        raise ValueError(f"quantile must lie in (0, 0.5), got {quantile!r}")
    values = Normal(0.0, 1.0).icdf(torch.linspace(quantile, 1 - quantile, num_per_side))  # (n,)
    z2, z1 = torch.meshgrid(values.flip(0), values, indexing="ij")  # rows: z_2 top to bottom
    return torch.stack([z1.reshape(-1), z2.reshape(-1)], dim=1)  # (n * n, 2)


def posterior_sweep(posterior: Distribution, scales: torch.Tensor) -> torch.Tensor:
    r"""Codes :math:`z = \mu + c \sigma` of one image's :math:`q(z \mid x) = \mathcal{N}(\mu, \mathrm{diag}(\sigma^2))`,
    one per :math:`c` in ``scales``.

    ``posterior`` holds one image (batch shape (1,) or ()); the result has shape (len(scales), latent_dim).
    :math:`c = 0` is the posterior mean. Each coordinate alone stays within :math:`q`'s central 95 % for
    :math:`|c| \le 1.96` (about 2), but jointly :math:`z` lies :math:`\sqrt{d}\,|c|` standard deviations from the mean
    (:math:`d` = ``latent_dim``): in 20 dimensions, :math:`c = \pm 1` is already as far as a typical sample
    of :math:`q`.
    """
    q = diagonal_normal(posterior)
    if q.loc.dim() > 2 or (q.loc.dim() == 2 and q.loc.shape[0] != 1):
        raise ValueError(f"posterior_sweep takes q(z|x) of ONE image, got batch shape {tuple(q.loc.shape[:-1])}")
    mu, sigma = q.loc.reshape(-1), q.scale.reshape(-1)  # (latent_dim,)
    return mu + scales.to(mu)[:, None] * sigma  # (steps, 1) * (latent_dim,) => (steps, latent_dim)


def traverse(z: torch.Tensor, dim: int, values: torch.Tensor) -> torch.Tensor:
    r"""Codes equal to ``z`` (latent_dim,) except in dimension ``dim``, which takes each of ``values``.

    ``z`` is used as given (typically the posterior mean of an image); nothing is re-scaled by :math:`\mu`
    or :math:`\sigma`, so a value :math:`v` means :math:`z_\text{dim} = v` on the prior's scale. Shape (len(values),
    latent_dim).
    """
    if z.dim() != 1:
        raise ValueError(f"traverse takes one code of shape (latent_dim,), got {tuple(z.shape)}")
    if not -z.shape[0] <= dim < z.shape[0]:
        raise ValueError(f"dim {dim} is out of range for a {z.shape[0]}-d code")
    codes = z.repeat(len(values), 1)  # (steps, latent_dim)
    codes[:, dim] = values.to(z)
    return codes


def interpolate(z_start: torch.Tensor, z_end: torch.Tensor, steps: int) -> torch.Tensor:
    r"""``steps`` codes on the straight line from ``z_start`` to ``z_end`` (both included), shape
    (steps, latent_dim):

    .. math::

        z(t) = (1 - t)\, z_\text{start} + t\, z_\text{end}, \quad t = 0, \frac{1}{\text{steps} - 1}, \ldots, 1.
    """
    if z_start.shape != z_end.shape or z_start.dim() != 1:
        raise ValueError(f"interpolate takes two codes of one shape (latent_dim,), got {tuple(z_start.shape)} "
                         f"and {tuple(z_end.shape)}")
    positive_int("steps", steps, minimum=2)
    t = torch.linspace(0, 1, steps, dtype=z_start.dtype, device=z_start.device)[:, None]  # (steps, 1)
    return (1 - t) * z_start + t * z_end
