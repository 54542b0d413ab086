"""A linear-Gaussian latent-variable model: evidence and posterior known exactly.

Introduced in notebook 04 (the ELBO), where they make log p(x) = ELBO + KL(q || p(z|x)) checkable to
numerical precision; the tests use them as an independent reference for ``vae_course.objectives``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Distribution, Independent, MultivariateNormal, Normal


class LinearGaussian(nn.Module):
    """A linear-Gaussian latent-variable model (probabilistic PCA, Tipping & Bishop 1999):

    p(z) = N(0, I_d),  p(x|z) = N(W z + b, sigma^2 I_D).

    Everything is Gaussian, so the evidence and the posterior have closed forms:

    p(x)   = N(b, W W^T + sigma^2 I_D),
    p(z|x) = N(S W^T (x - b) / sigma^2, S),  S = (I_d + W^T W / sigma^2)^{-1}.

    It follows the model protocol; ``encode`` returns the exact posterior p(z|x).
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
        """A model with weights and bias drawn from N(0, 1) by a seeded generator."""
        generator = torch.Generator().manual_seed(seed)
        weight = torch.randn(data_dim, latent_dim, generator=generator, dtype=dtype)
        bias = torch.randn(data_dim, generator=generator, dtype=dtype)
        return cls(weight, bias, noise_scale)

    @property
    def prior(self) -> Distribution:
        """p(z) = N(0, I_d)."""
        zeros = torch.zeros(self.latent_dim, dtype=self.weight.dtype, device=self.weight.device)
        return Independent(Normal(zeros, torch.ones_like(zeros)), 1)

    def decode(self, z: torch.Tensor) -> Distribution:
        """p(x|z) = N(W z + b, sigma^2 I_D); z (..., d) gives batch shape (...)."""
        mean = z @ self.weight.T + self.bias  # (..., d) => (..., D)
        return Independent(Normal(mean, torch.full_like(mean, self.noise_scale)), 1)

    def evidence(self) -> Distribution:
        """p(x) = N(b, W W^T + sigma^2 I_D): log p(x) exactly, via ``evidence().log_prob(x)``."""
        data_dim = self.weight.shape[0]
        identity = torch.eye(data_dim, dtype=self.weight.dtype, device=self.weight.device)
        return MultivariateNormal(self.bias, self.weight @ self.weight.T + self.noise_scale**2 * identity)

    def posterior(self, x: torch.Tensor) -> Distribution:
        """p(z|x) = N(S W^T (x - b) / sigma^2, S), S = (I + W^T W / sigma^2)^{-1}; batch shape (B,)."""
        variance = self.noise_scale**2
        identity = torch.eye(self.latent_dim, dtype=self.weight.dtype, device=self.weight.device)
        covariance = torch.linalg.inv(identity + self.weight.T @ self.weight / variance)  # S: (d, d)
        mean = (x - self.bias) @ self.weight @ covariance / variance  # (B, D) => (B, d); S is symmetric
        return MultivariateNormal(mean, covariance)

    def encode(self, x: torch.Tensor) -> Distribution:
        """The exact posterior: with q(z|x) = p(z|x), the ELBO equals log p(x)."""
        return self.posterior(x)
