"""What several exercise checks share: reading a learner's numbers, comparing numbers, and the
independent references for a VAE's rate and distortion (closed form written out, many samples)."""

from __future__ import annotations

import contextlib
import math
from typing import NamedTuple

import torch


def numbers(answer: object, count: int, what: str, hint: str = "", finite: bool = True,
            finite_hint: str = "") -> list[float]:
    """``count`` Python floats from numbers, a NumPy array or a tensor of any shape, finite unless
    ``finite=False``; the message for a wrong type, a wrong count (``hint`` added) or a NaN or infinity
    (``finite_hint`` added) names the mistake."""
    expected = "one number" if count == 1 else f"{count} numbers"
    values = None
    if answer is not None and not isinstance(answer, (bool, str)):
        with contextlib.suppress(TypeError, ValueError, RuntimeError):
            values = torch.as_tensor(answer, dtype=torch.float64).flatten()
    if isinstance(answer, (list, tuple)):
        got = f"a {type(answer).__name__} that holds something other than numbers"
    else:
        got = f"{'None' if answer is None else 'a ' + type(answer).__name__}, which is not a number"
    assert values is not None, f"{what} should be {expected}, got {got}"
    size = values.numel()
    assert size == count, f"{what} should be {expected}, got {size} number{'s' * (size != 1)}{hint}"
    assert not finite or torch.isfinite(values).all(), (
        f"{what} should be {'a finite number' if count == 1 else 'finite numbers'}, got nan or inf{finite_hint}")
    return values.tolist()


def number(answer: object, what: str, hint: str = "", finite: bool = True, finite_hint: str = "") -> float:
    """A Python float from a number, a NumPy scalar or a one-element tensor: ``numbers`` of one (a check that
    names the mistake behind a NaN passes ``finite=False``)."""
    return numbers(answer, 1, what, hint, finite, finite_hint)[0]


def is_close(value: float, target: float, rtol: float = 1e-4, atol: float = 1e-9) -> bool:
    """|value - target| <= rtol |target| + atol, for a finite ``target`` (an infinite one matches nothing)."""
    return math.isfinite(target) and abs(value - target) <= rtol * abs(target) + atol


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
