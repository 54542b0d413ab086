"""What several exercise checks share: reading a learner's number, comparing numbers, and the
independent references for a VAE's rate and distortion (closed form written out, many samples)."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch


def number(answer: object, what: str, hint: str = "", finite: bool = True) -> float:
    """A Python float from a number, a NumPy scalar or a one-element tensor, finite unless ``finite=False``
    (for a check that names the mistake behind a NaN); ``hint`` is added to the message when the answer
    holds several numbers."""
    assert answer is not None and not isinstance(answer, bool), f"{what} should be a number"
    values = torch.as_tensor(answer, dtype=torch.float64)
    assert values.numel() == 1, f"{what} should be one number, got {values.numel()} numbers{hint}"
    value = values.item()
    assert math.isfinite(value) or not finite, f"{what} should be a finite number"
    return value


def is_close(value: float, target: float, rtol: float = 1e-4, atol: float = 1e-9) -> bool:
    return abs(value - target) <= rtol * abs(target) + atol


class Posterior(NamedTuple):
    """The encoder's mean and standard deviation (N, latent_dim), float64, and the closed-form
    KL(q(z_d|x) || N(0, 1)) of each image and dimension (N, latent_dim)."""

    mu: torch.Tensor
    sigma: torch.Tensor
    kl: torch.Tensor

    @property
    def rate(self) -> float:
        """The mean over the images of the summed KL, nats per image."""
        return self.kl.sum(dim=1).mean().item()


def posterior_kl(model: torch.nn.Module, x: torch.Tensor) -> Posterior:
    """The closed form 1/2 (mu_d^2 + sigma_d^2 - 1 - log sigma_d^2), written out on ``model``'s q(z|x)."""
    with torch.no_grad():
        q = model.encode(x)
        mu, sigma = q.mean.double(), q.stddev.double()  # (N, latent_dim)
    return Posterior(mu, sigma, 0.5 * (mu**2 + sigma**2 - 1 - torch.log(sigma**2)))


def reference_distortion(model: torch.nn.Module, x: torch.Tensor, posterior: Posterior,
                         samples: int = 32) -> tuple[float, float]:
    """(mean distortion -E_q[log p(x|z)] over ``samples`` reparameterised samples per image, the standard
    error of a one-sample-per-image mean distortion). A generator of its own leaves the learner's random
    stream as it was."""
    mu, sigma = posterior.mu.to(x.dtype), posterior.sigma.to(x.dtype)
    with torch.no_grad():
        generator = torch.Generator(device=mu.device).manual_seed(0)
        noise = torch.randn((samples, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)
        distortion = -model.decode(mu + sigma * noise).log_prob(x)  # (S, N)
    # A one-sample estimate per image varies by the within-image spread of -log p(x|z).
    return distortion.mean().item(), math.sqrt(distortion.var(dim=0).mean().item() / x.shape[0])
