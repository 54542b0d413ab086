r"""Monte Carlo estimators of the gradient of an expectation, :math:`\nabla_\theta \mathbb{E}_{q_\theta}[f(z)]`.

Introduced in notebook 05 (reparameterization).

A VAE's reconstruction term :math:`\mathbb{E}_{q(z \mid x)}[\log p(x \mid z)]` is an expectation under a distribution
whose
parameters we train, so its gradient cannot be taken by differentiating a sample: the sample is a number
drawn by a random generator, and autograd has no path from it back to the parameters. Two unbiased
estimators get around that; both are here, for :math:`q_\theta = \mathcal{N}(\mu, \sigma^2)` with
:math:`\theta = (\mu, \log \sigma)`:

- the score-function (REINFORCE, likelihood-ratio) estimator, which needs only the values :math:`f(z)`;
- the reparameterized (pathwise) estimator, which writes :math:`z = \mu + \sigma \epsilon` and needs
  :math:`f'(z)`.

Shapes: ``mu`` and ``log_sigma`` have one shape ``S`` (any shape: each entry parameterises its own
one-dimensional Gaussian, independent of the others), and ``f`` is applied entry by entry, like
``torch.exp`` or ``lambda z: z**2``: it maps ``z`` of shape ``(K, *S)`` to ``f(z)`` of shape ``(K, *S)``.
Giving ``S`` entries that all hold the same mu and log sigma therefore gives ``S`` independent
:math:`K`-sample estimates in one call: that is how the notebook measures the estimators' variances
cheaply.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch

from ._checks import positive_int


class GradientEstimate(NamedTuple):
    r"""A :math:`K`-sample Monte Carlo estimate of :math:`\nabla \mathbb{E}_{\mathcal{N}(\mu, \sigma^2)}[f(z)]`
    with respect to :math:`(\mu, \log \sigma)`.

    - ``grad_mu``, ``grad_log_sigma``: the estimates, shape ``S``: the averages over the :math:`K`
      per-sample terms.
    - ``per_sample_grad_mu``, ``per_sample_grad_log_sigma``: the :math:`K` independent per-sample terms,
      shape ``(K, *S)``. Each is an unbiased one-sample estimate, so their variance over :math:`K` is the
      variance of a one-sample estimator, and
      :math:`\mathrm{Var}(\mathtt{grad\_mu}) = \mathrm{Var}(\mathtt{per\_sample\_grad\_mu}) / K`.
    - ``z``: the samples :math:`z_k = \mu + \sigma \epsilon_k` the terms were computed at, shape ``(K, *S)``.
    """

    grad_mu: torch.Tensor
    grad_log_sigma: torch.Tensor
    per_sample_grad_mu: torch.Tensor
    per_sample_grad_log_sigma: torch.Tensor
    z: torch.Tensor


def score_function_gradient(
    f: Callable[[torch.Tensor], torch.Tensor],
    mu: torch.Tensor,
    log_sigma: torch.Tensor,
    num_samples: int,
    *,
    baseline: float | torch.Tensor = 0.0,
    generator: torch.Generator | None = None,
) -> GradientEstimate:
    r"""The score-function (REINFORCE) estimator of :math:`\nabla_\theta \mathbb{E}_{q_\theta}[f(z)]`,
    :math:`q_\theta = \mathcal{N}(\mu, \sigma^2)`:

    .. math::

        \nabla_\theta \mathbb{E}_q[f(z)] &= \mathbb{E}_q[f(z) \nabla_\theta \log q_\theta(z)] \\
            &\approx \frac{1}{K} \sum_k (f(z_k) - b) \nabla_\theta \log q_\theta(z_k), \quad z_k \sim q_\theta,

    which follows from :math:`\nabla q = q \nabla \log q`. For the Gaussian, with
    :math:`\epsilon = (z - \mu) / \sigma`,

    .. math::

        \frac{\partial}{\partial \mu} \log q(z) = \frac{\epsilon}{\sigma}, \qquad
        \frac{\partial}{\partial \log \sigma} \log q(z) = \epsilon^2 - 1.

    :math:`f` is only evaluated, never differentiated: it may be a step function, or :math:`z` could be
    discrete. ``baseline`` :math:`b` (a control variate) is optional: because
    :math:`\mathbb{E}_q[\nabla \log q] = 0`, subtracting any constant :math:`b` leaves the estimator
    unbiased, and a :math:`b` close to :math:`\mathbb{E}_q[f(z)]` lowers its variance. :math:`b` must
    not depend on the samples :math:`z_k` (a value from an earlier, independent batch is fine).

    Returns a ``GradientEstimate`` of plain tensors (no autograd graph). ``generator`` makes the draws
    reproducible; it must live on the device of ``mu``.
    """
    mu, log_sigma = _check_parameters(mu, log_sigma, num_samples)
    sigma = log_sigma.exp()
    eps = torch.randn((num_samples, *mu.shape), dtype=mu.dtype, device=mu.device, generator=generator)
    z = mu + sigma * eps  # (K, *S)
    with torch.no_grad():
        value = _evaluate(f, z)
    weight = value - baseline  # (K, *S)
    per_sample_mu = weight * eps / sigma
    per_sample_log_sigma = weight * (eps.square() - 1.0)
    return GradientEstimate(
        per_sample_mu.mean(dim=0), per_sample_log_sigma.mean(dim=0), per_sample_mu, per_sample_log_sigma, z
    )


def reparameterized_gradient(
    f: Callable[[torch.Tensor], torch.Tensor],
    mu: torch.Tensor,
    log_sigma: torch.Tensor,
    num_samples: int,
    *,
    generator: torch.Generator | None = None,
) -> GradientEstimate:
    r"""The reparameterized (pathwise) estimator of :math:`\nabla_\theta \mathbb{E}_{q_\theta}[f(z)]`,
    :math:`q_\theta = \mathcal{N}(\mu, \sigma^2)`:

    .. math::

        \mathbb{E}_q[f(z)] = \mathbb{E}_{\epsilon \sim \mathcal{N}(0, 1)}[f(\mu + \sigma \epsilon)],

    and the law of :math:`\epsilon` does not depend on :math:`\theta`, so

    .. math::

        \nabla_\theta \mathbb{E}_q[f(z)] &= \mathbb{E}_\epsilon[\nabla_\theta f(\mu + \sigma \epsilon)] \\
            &\approx \frac{1}{K} \sum_k \nabla_\theta f(\mu + \sigma \epsilon_k), \quad \epsilon_k \sim \mathcal{N}(0,
            1).

    By the chain rule the per-sample terms are :math:`f'(z_k)` for :math:`\mu` and
    :math:`f'(z_k) \sigma \epsilon_k` for :math:`\log \sigma`; here autograd computes them, by
    differentiating :math:`f(\mu + \sigma \epsilon)` as a VAE's loss is differentiated. :math:`f` must be
    differentiable in :math:`z`; a ``ValueError`` says so if autograd cannot reach :math:`z` through :math:`f`.

    Returns a ``GradientEstimate`` of plain tensors (no autograd graph). ``generator`` makes the draws
    reproducible; it must live on the device of ``mu``.
    """
    mu, log_sigma = _check_parameters(mu, log_sigma, num_samples)
    eps = torch.randn((num_samples, *mu.shape), dtype=mu.dtype, device=mu.device, generator=generator)
    # One copy of the parameters per sample: since f acts entry by entry, the gradient of the summed
    # f with respect to copy k is sample k's own term, so one backward pass yields all K of them.
    mu_k = mu.expand_as(eps).clone().requires_grad_(True)  # (K, *S)
    log_sigma_k = log_sigma.expand_as(eps).clone().requires_grad_(True)  # (K, *S)
    with torch.enable_grad():
        z = mu_k + log_sigma_k.exp() * eps  # the sampling path, now differentiable
        value = _evaluate(f, z)
        if not value.requires_grad:
            raise ValueError(
                "f(z) does not depend differentiably on z (a step function, a comparison, or a .detach() "
                "inside f?): the reparameterized estimator needs f'(z); use score_function_gradient"
            )
        per_sample_mu, per_sample_log_sigma = torch.autograd.grad(value.sum(), (mu_k, log_sigma_k))
    return GradientEstimate(
        per_sample_mu.mean(dim=0), per_sample_log_sigma.mean(dim=0), per_sample_mu, per_sample_log_sigma, z.detach()
    )


def _check_parameters(mu: torch.Tensor, log_sigma: torch.Tensor, num_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate the arguments; return (mu, log_sigma) detached and broadcast to one shape S."""
    positive_int("num_samples", num_samples)
    mu, log_sigma = torch.as_tensor(mu), torch.as_tensor(log_sigma)
    if not (mu.is_floating_point() and log_sigma.is_floating_point()):
        raise ValueError(f"mu and log_sigma must be floating-point tensors, got {mu.dtype} and {log_sigma.dtype}")
    if mu.dtype != log_sigma.dtype or mu.device != log_sigma.device:
        raise ValueError(
            f"mu ({mu.dtype}, {mu.device}) and log_sigma ({log_sigma.dtype}, {log_sigma.device}) must share dtype and device"
        )
    # The estimators return numbers, not graphs: detaching keeps a caller's tensors out of it.
    mu, log_sigma = torch.broadcast_tensors(mu.detach(), log_sigma.detach())
    return mu, log_sigma


def _evaluate(f: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor) -> torch.Tensor:
    """f(z), checked to act entry by entry (same shape as z)."""
    value = f(z)
    if not isinstance(value, torch.Tensor) or value.shape != z.shape:
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(
            f"f must act entry by entry, returning a tensor of the shape of z {tuple(z.shape)}; got {shape}"
        )
    return value


def gradient_snr(objective: Callable[[], torch.Tensor], parameters: Sequence[torch.Tensor],
                 num_repeats: int) -> torch.Tensor:
    r"""The signal-to-noise ratio of a stochastic gradient, entry by entry, over ``num_repeats`` independent
    evaluations of ``objective()`` (a scalar with fresh random samples each call):

    .. math::

        \mathrm{SNR}_i = \frac{|\hat{\mathbb{E}}[g_i]|}{\hat\sigma[g_i]}, \qquad g = \nabla_\theta\, \text{objective},

    the measure Rainforth et al. (2018) use to show that a tighter IWAE bound can give the encoder a
    *worse* gradient. Mean and standard deviation are over the repeats; the result has one entry per
    entry of ``parameters``, flattened, shape (P,). An entry whose gradient is always exactly 0 gives
    NaN (0 / 0): it carries no signal to measure. Introduced in notebook 11 (tighter bounds); the
    variance of a gradient estimator is notebook 05's measurement.
    """
    positive_int("num_repeats", num_repeats, minimum=2)
    parameters = list(parameters)
    draws = []
    for _ in range(num_repeats):
        with torch.enable_grad():
            grads = torch.autograd.grad(objective(), parameters, allow_unused=True)
        draws.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(parameters, grads)]))
    stacked = torch.stack(draws)  # (num_repeats, P)
    return stacked.mean(dim=0).abs() / stacked.std(dim=0)
