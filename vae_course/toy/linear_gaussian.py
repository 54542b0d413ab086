r"""A linear-Gaussian latent-variable model: evidence and posterior known exactly.

Introduced in notebook 04 (the ELBO), where they make
:math:`\log p(x) = \mathrm{ELBO} + \mathrm{KL}(q \,\|\, p(z \mid x))` checkable to
numerical precision; the tests use them as an independent reference for ``vae_course.objectives``.

- ``LinearGaussian``: the model, with its exact evidence :math:`p(x)` and posterior :math:`p(z \mid x)`;
- ``expected_log_likelihood``, ``analytic_elbo``: the reconstruction term and the whole ELBO of a
  Gaussian :math:`q`, in closed form;
- ``VariationalGaussian``: a learnable Gaussian :math:`q(z)`, full-covariance or diagonal, that the ELBO
  objectives can fit to one data point by gradient ascent.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Distribution, Independent, MultivariateNormal, Normal, kl_divergence


class LinearGaussian(nn.Module):
    r"""A linear-Gaussian latent-variable model (probabilistic PCA, Tipping & Bishop 1999):

    .. math::

        p(z) = \mathcal{N}(0, I_d), \quad p(x \mid z) = \mathcal{N}(W z + b, \sigma^2 I_D).

    Everything is Gaussian, so the evidence and the posterior have closed forms:

    .. math::

        p(x) &= \mathcal{N}(b, W W^\top + \sigma^2 I_D), \\
        p(z \mid x) &= \mathcal{N}(S W^\top (x - b) / \sigma^2, S), \quad S = (I_d + W^\top W / \sigma^2)^{-1}.

    It follows the model protocol; ``encode`` returns the exact posterior :math:`p(z \mid x)`.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, noise_scale: float) -> None:
        super().__init__()
        if weight.dim() != 2 or bias.shape != weight.shape[:1]:
            raise ValueError(f"weight must be (D, d) and bias (D,), got {tuple(weight.shape)} and {tuple(bias.shape)}")
        if not noise_scale > 0:
            raise ValueError(f"noise_scale must be positive, got {noise_scale}")
        self.register_buffer("weight", weight)  # (D, d)
        self.register_buffer("bias", bias)  # (D,)
        self.noise_scale = noise_scale
        self.latent_dim = weight.shape[1]

    @classmethod
    def random(cls, data_dim: int, latent_dim: int, noise_scale: float = 0.5, seed: int = 0,
               dtype: torch.dtype = torch.float64) -> LinearGaussian:
        r"""A model with weights and bias drawn from :math:`\mathcal{N}(0, 1)` by a seeded generator."""
        generator = torch.Generator().manual_seed(seed)
        weight = torch.randn(data_dim, latent_dim, generator=generator, dtype=dtype)
        bias = torch.randn(data_dim, generator=generator, dtype=dtype)
        return cls(weight, bias, noise_scale)

    @property
    def prior(self) -> Distribution:
        r""":math:`p(z) = \mathcal{N}(0, I_d)`."""
        zeros = torch.zeros(self.latent_dim, dtype=self.weight.dtype, device=self.weight.device)
        return Independent(Normal(zeros, torch.ones_like(zeros)), 1)

    def decode(self, z: torch.Tensor) -> Distribution:
        r""":math:`p(x \mid z) = \mathcal{N}(W z + b, \sigma^2 I_D)`; ``z`` (..., d) gives batch shape (...)."""
        mean = z @ self.weight.T + self.bias  # (..., d) => (..., D)
        return Independent(Normal(mean, torch.full_like(mean, self.noise_scale)), 1)

    def evidence(self) -> Distribution:
        r""":math:`p(x) = \mathcal{N}(b, W W^\top + \sigma^2 I_D)`: :math:`\log p(x)` exactly, via
        ``evidence().log_prob(x)``."""
        data_dim = self.weight.shape[0]
        identity = torch.eye(data_dim, dtype=self.weight.dtype, device=self.weight.device)
        return MultivariateNormal(self.bias, self.weight @ self.weight.T + self.noise_scale**2 * identity)

    def posterior(self, x: torch.Tensor) -> Distribution:
        r""":math:`p(z \mid x) = \mathcal{N}(S W^\top (x - b) / \sigma^2, S)`,
        :math:`S = (I + W^\top W / \sigma^2)^{-1}`; batch shape (B,)."""
        variance = self.noise_scale**2
        identity = torch.eye(self.latent_dim, dtype=self.weight.dtype, device=self.weight.device)
        covariance = torch.linalg.inv(identity + self.weight.T @ self.weight / variance)  # S: (d, d)
        mean = (x - self.bias) @ self.weight @ covariance / variance  # (B, D) => (B, d); S is symmetric
        return MultivariateNormal(mean, covariance)

    def encode(self, x: torch.Tensor) -> Distribution:
        r"""The exact posterior: with :math:`q(z \mid x) = p(z \mid x)`, the ELBO equals :math:`\log p(x)`."""
        return self.posterior(x)


def _standard_normal(model: LinearGaussian) -> MultivariateNormal:
    """p(z) = N(0, I_d) as a MultivariateNormal, so that torch computes KL(q || p(z)) in closed form
    for a full-covariance q (it has no formula for a MultivariateNormal against ``model.prior``, an
    Independent Normal: ``kl_divergence`` raises, and ``objectives.kl_to_prior`` would fall back to Monte
    Carlo)."""
    zeros = torch.zeros(model.latent_dim, dtype=model.weight.dtype, device=model.weight.device)
    return MultivariateNormal(zeros, scale_tril=torch.diag_embed(torch.ones_like(zeros)), validate_args=False)


def expected_log_likelihood(model: LinearGaussian, q: MultivariateNormal, x: torch.Tensor) -> torch.Tensor:
    r"""The reconstruction term :math:`\mathbb{E}_q[\log p(x \mid z)]` in closed form, for
    :math:`q = \mathcal{N}(m, S)` and ``x`` of shape (..., D):

    .. math::

        \mathbb{E}_q[\log p(x \mid z)] = -\frac{D}{2} \log(2 \pi \sigma^2)
            - \frac{\|x - W m - b\|^2 + \operatorname{tr}(W S W^\top)}{2 \sigma^2},

    because :math:`\mathbb{E}_q \|x - W z - b\|^2 = \|x - W m - b\|^2 + \operatorname{tr}(W S W^\top)`
    (squared bias plus variance).
    Introduced in notebook 04 (the ELBO).
    """
    if not isinstance(q, MultivariateNormal):
        raise TypeError(f"q must be a MultivariateNormal, got {type(q).__name__}: "
                        "write a diagonal Gaussian as MultivariateNormal(mean, torch.diag_embed(variance))")
    variance = model.noise_scale**2
    data_dim = model.weight.shape[0]
    residual = x - q.mean @ model.weight.T - model.bias  # (..., D)
    # tr(W S W^T) = sum_jk (W^T W)_jk S_jk: no (D, D) matrix is ever formed.
    spread = (model.weight.T @ model.weight * q.covariance_matrix).sum(dim=(-2, -1))  # (...,)
    return -0.5 * data_dim * math.log(2 * math.pi * variance) - (residual.pow(2).sum(-1) + spread) / (2 * variance)


def analytic_elbo(model: LinearGaussian, q: MultivariateNormal, x: torch.Tensor) -> torch.Tensor:
    r"""The ELBO of a Gaussian :math:`q(z) = \mathcal{N}(m, S)` in closed form, per example:

    .. math::

        \mathrm{ELBO} = \mathbb{E}_q[\log p(x \mid z)] - \mathrm{KL}(q(z) \,\|\, p(z)),

    the first term from ``expected_log_likelihood``, the second from torch.distributions. No sampling,
    and no use of the evidence or the posterior: it is an independent check of
    :math:`\log p(x) = \mathrm{ELBO} + \mathrm{KL}(q(z) \,\|\, p(z \mid x))`. Introduced in notebook 04 (the ELBO).
    """
    return expected_log_likelihood(model, q, x) - kl_divergence(q, _standard_normal(model))


class VariationalGaussian(nn.Module):
    r"""A learnable Gaussian :math:`q(z) = \mathcal{N}(m, L L^\top)` for one data point of a
    ``LinearGaussian`` model: the mean :math:`m` and the Cholesky factor :math:`L` (lower triangular,
    positive diagonal) are the parameters.

    ``full_covariance=False`` keeps :math:`L` diagonal: the mean-field family, whose members cannot match a
    correlated posterior. The diagonal of :math:`L` is stored as its logarithm, so it stays positive
    whatever step the optimiser takes. The default starts at :math:`q = p(z) = \mathcal{N}(0, I)`.

    It follows the model protocol, so ``vae_course.objectives`` can train it: ``encode(x)`` returns the
    same :math:`q` for every row of ``x`` (:math:`q` is fitted to one :math:`x`, not amortised: there is no
    encoder network), ``decode`` is the model's :math:`p(x \mid z)`, ``prior`` is the model's
    :math:`p(z) = \mathcal{N}(0, I)`, written as a MultivariateNormal so that
    :math:`\mathrm{KL}(q \,\|\, p(z))` is analytic. Its distributions skip torch's argument
    validation (``validate_args=False``): :math:`L` is a valid Cholesky factor by construction, and the check
    would cost more than the rest of a training step. Introduced in notebook 04 (the ELBO).
    """

    def __init__(self, model: LinearGaussian, loc: torch.Tensor | None = None,
                 scale_tril: torch.Tensor | None = None, full_covariance: bool = True) -> None:
        super().__init__()
        latent_dim = model.latent_dim
        like = model.weight
        loc = torch.zeros(latent_dim, dtype=like.dtype, device=like.device) if loc is None else loc
        if scale_tril is None:
            scale_tril = torch.eye(latent_dim, dtype=like.dtype, device=like.device)
        if loc.shape != (latent_dim,) or scale_tril.shape != (latent_dim, latent_dim):
            raise ValueError(f"loc must be ({latent_dim},) and scale_tril ({latent_dim}, {latent_dim}), "
                             f"got {tuple(loc.shape)} and {tuple(scale_tril.shape)}")
        if not torch.equal(scale_tril, scale_tril.tril()) or not torch.all(scale_tril.diagonal() > 0):
            raise ValueError("scale_tril must be lower triangular with a positive diagonal (a Cholesky factor)")
        if not full_covariance and not torch.equal(scale_tril, torch.diag_embed(scale_tril.diagonal())):
            raise ValueError("full_covariance=False needs a diagonal scale_tril")
        self.model = model
        self.latent_dim = latent_dim
        self.full_covariance = full_covariance
        self.loc = nn.Parameter(loc.detach().clone())
        self.log_diagonal = nn.Parameter(scale_tril.diagonal().log().detach().clone())
        rows, cols = torch.tril_indices(latent_dim, latent_dim, offset=-1, device=like.device)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        # The entries below the diagonal: learnable for the full family, absent for the diagonal one.
        self.below_diagonal = nn.Parameter(scale_tril[rows, cols].detach().clone()) if full_covariance else None

    @property
    def scale_tril(self) -> torch.Tensor:
        r""":math:`L`, shape (d, d): :math:`q`'s covariance is :math:`L L^\top`."""
        scale_tril = torch.diag_embed(self.log_diagonal.exp())
        if self.below_diagonal is not None:
            scale_tril = scale_tril.index_put((self.rows, self.cols), self.below_diagonal)  # out of place
        return scale_tril

    def distribution(self) -> MultivariateNormal:
        r""":math:`q(z) = \mathcal{N}(m, L L^\top)`, batch shape ()."""
        return MultivariateNormal(self.loc, scale_tril=self.scale_tril, validate_args=False)

    @property
    def prior(self) -> Distribution:
        r""":math:`p(z) = \mathcal{N}(0, I_d)`, the model's prior, as a MultivariateNormal."""
        return _standard_normal(self.model)

    def encode(self, x: torch.Tensor) -> Distribution:
        """:math:`q(z)`, repeated for each row of ``x`` (..., D): batch shape (...)."""
        return MultivariateNormal(self.loc.expand(*x.shape[:-1], self.latent_dim), scale_tril=self.scale_tril,
                                  validate_args=False)

    def decode(self, z: torch.Tensor) -> Distribution:
        r"""The model's :math:`p(x \mid z)`."""
        return self.model.decode(z)
