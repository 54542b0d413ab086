r"""How far the ELBO is from :math:`\log p(x)`, and whose fault it is: the inference gaps of Cremer et al.
(2018).

Introduced in notebook 11 (tighter bounds and the inference gaps).

For an image :math:`x`, the encoder's :math:`q_\phi(z \mid x)` falls short of :math:`\log p(x)` by

.. math::

    \log p(x) - \mathrm{ELBO}(q_\phi)
      = \underbrace{\log p(x) - \mathrm{ELBO}(q^*)}_{\text{approximation gap}}
      + \underbrace{\mathrm{ELBO}(q^*) - \mathrm{ELBO}(q_\phi)}_{\text{amortization gap}},

where :math:`q^*` is the best member of the family (here: diagonal Gaussians) for this one image,
found by gradient ascent on its own ELBO (``optimize_posterior``). The approximation gap is the
family's fault, :math:`\mathrm{KL}(q^* \,\|\, p(z \mid x))`; the amortization gap is the encoder's:
one network has to serve every image at once.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from ._checks import finite_number, positive_int
from .objectives import GenerativeModel, diagonal_normal, elbo_terms, log_likelihood


def optimize_posterior(model: GenerativeModel, x: torch.Tensor, *, steps: int = 300, lr: float = 0.05,
                       num_samples: int = 8, start: Distribution | None = None) -> Distribution:
    r"""The per-image diagonal Gaussian :math:`q^*(z) = \mathcal{N}(m, \mathrm{diag}(s^2))` that maximises each
    image's own ELBO, the decoder held fixed:

    .. math::

        (m, \log s) \leftarrow (m, \log s) + \text{Adam step on }
        \frac{1}{S} \sum_{k=1}^{S} \log p(x \mid m + s \odot \epsilon_k) - \mathrm{KL}(q \,\|\, p(z)),
        \quad \epsilon_k \sim \mathcal{N}(0, I),

    ``steps`` times, from ``start`` (default: the encoder's :math:`q_\phi(z \mid x)`), with the step size
    falling linearly from ``lr`` to 0 so that the noisy gradient steps settle at the optimum. Each image has its own
    parameters and its own terms, so the images do not interact. The model's weights get no gradient
    and are not changed. Returns :math:`q^*` with batch shape (B,), detached.
    """
    positive_int("steps", steps)
    positive_int("num_samples", num_samples)
    finite_number("lr", lr, strict=True)
    with torch.no_grad():
        q = diagonal_normal(start if start is not None else model.encode(x))
        loc, log_scale = q.loc.clone().requires_grad_(True), q.scale.log().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([loc, log_scale], lr=lr)
    for step in range(steps):
        optimizer.param_groups[0]["lr"] = lr * (1 - step / steps)
        objective = elbo_terms(model, x, Independent(Normal(loc, log_scale.exp()), 1), num_samples).elbo  # (B,)
        loc.grad, log_scale.grad = torch.autograd.grad(-objective.sum(), [loc, log_scale])  # only q's parameters
        optimizer.step()
    return Independent(Normal(loc.detach(), log_scale.detach().exp()), 1)


class DistortedEncoder(nn.Module):
    r"""A toy model whose amortised encoder is its exact posterior, deliberately distorted: for a model with
    ``posterior(x)`` of mean :math:`m(x)` and marginal standard deviations :math:`s(x)` (the linear-Gaussian
    toy of notebook 04),

    .. math::

        q_\phi(z \mid x) = \mathcal{N}\big(a\, m(x) + b,\ \mathrm{diag}(c\, s(x))^2\big),

    with :math:`a` = ``mean_scale``, :math:`b` = ``mean_shift``, :math:`c` = ``scale_factor``. Where the exact
    posterior is diagonal it lies in the family, so the amortization gap of this encoder is exactly
    :math:`\mathrm{KL}(q_\phi \,\|\, p(z \mid x))` and its approximation gap is 0. Decoder and prior are the model's.
    Introduced in notebook 11.
    """

    def __init__(self, model: nn.Module, mean_scale: float = 1.0, mean_shift: float = 0.0,
                 scale_factor: float = 1.0) -> None:
        super().__init__()
        finite_number("mean_scale", mean_scale, minimum=-math.inf)
        finite_number("mean_shift", mean_shift, minimum=-math.inf)
        finite_number("scale_factor", scale_factor, strict=True)
        self.model, self.latent_dim = model, model.latent_dim
        self.mean_scale, self.mean_shift, self.scale_factor = mean_scale, mean_shift, scale_factor

    @property
    def prior(self) -> Distribution:
        return self.model.prior

    def decode(self, z: torch.Tensor) -> Distribution:
        return self.model.decode(z)

    def encode(self, x: torch.Tensor) -> Distribution:
        exact = self.model.posterior(x)
        loc = self.mean_scale * exact.mean + self.mean_shift
        return Independent(Normal(loc, self.scale_factor * exact.variance.sqrt()), 1)


class InferenceGaps(NamedTuple):
    """Per-image numbers (B,) in nats: ``log_evidence`` (:math:`\\log p(x)`, exact or importance-sampled),
    ``elbo_amortized`` (:math:`\\mathrm{ELBO}(q_\\phi)`), ``elbo_optimized`` (:math:`\\mathrm{ELBO}(q^*)`)."""

    log_evidence: torch.Tensor
    elbo_amortized: torch.Tensor
    elbo_optimized: torch.Tensor

    @property
    def approximation(self) -> torch.Tensor:
        r""":math:`\log p(x) - \mathrm{ELBO}(q^*)`: the family's fault."""
        return self.log_evidence - self.elbo_optimized

    @property
    def amortization(self) -> torch.Tensor:
        r""":math:`\mathrm{ELBO}(q^*) - \mathrm{ELBO}(q_\phi)`: the encoder's fault."""
        return self.elbo_optimized - self.elbo_amortized

    @property
    def total(self) -> torch.Tensor:
        r""":math:`\log p(x) - \mathrm{ELBO}(q_\phi)`, the sum of the two gaps."""
        return self.log_evidence - self.elbo_amortized


def inference_gaps(model: GenerativeModel, x: torch.Tensor, *, log_evidence: torch.Tensor | None = None,
                   elbo_samples: int = 1000, evidence_samples: int = 1000, **optimize) -> InferenceGaps:
    r"""The inference gaps of ``x`` under ``model`` (module docstring), per image.

    Both ELBOs are estimated with ``elbo_samples`` samples and the analytic KL (``objectives.elbo_terms``).
    ``log_evidence``: the exact :math:`\log p(x)` where it is known (a toy model); otherwise it is
    importance-sampled with ``evidence_samples`` samples from :math:`q^*` (``objectives.log_likelihood``),
    the better proposal, and is then a stochastic lower bound, so the approximation gap is underestimated
    by its bias. ``optimize``: keyword arguments of ``optimize_posterior``.
    """
    optimized = optimize_posterior(model, x, **optimize)
    with torch.no_grad():
        amortized_elbo = elbo_terms(model, x, num_samples=elbo_samples).elbo
        optimized_elbo = elbo_terms(model, x, optimized, elbo_samples).elbo
        if log_evidence is None:
            log_evidence = log_likelihood(model, x, num_samples=evidence_samples, proposal=optimized)
    return InferenceGaps(log_evidence, amortized_elbo, optimized_elbo)
