r"""A bimodal 1-d Gaussian mixture, and one Gaussian fitted to it by forward and by reverse KL.

Introduced in notebook 03 (KL divergence), where the two fits show that the KL divergence is not
symmetric: minimising the forward :math:`\mathrm{KL}(p \,\|\, q)` covers every mode of :math:`p`
(mass-covering), minimising the reverse :math:`\mathrm{KL}(q \,\|\, p)` settles on one mode (mode-seeking). A VAE's
encoder is fitted by the reverse KL.

Everything here is exact or deterministic (closed forms, quadrature, a grid), so the tests and the
notebook can compare the fits against an independent reference: ``grid_kl``, numerical integration.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch.distributions import Categorical, Distribution, MixtureSameFamily, Normal


def bimodal_mixture(
    means: Sequence[float] = (-2.0, 2.0),
    scales: Sequence[float] = (0.5, 0.8),
    weights: Sequence[float] = (0.4, 0.6),
    dtype: torch.dtype = torch.float64,
) -> MixtureSameFamily:
    r"""The target density of notebook 03, a mixture of :math:`K` univariate Gaussians:

    .. math::

        p(x) = \sum_k w_k \mathcal{N}(x; \mu_k, s_k^2), \quad w_k \ge 0, \quad \sum_k w_k = 1.

    The defaults have two modes 4 apart (5 of the wider component's standard deviations), with
    unequal weights and widths, so the two reverse-KL fits (one per mode) differ.
    """
    weights = torch.tensor(weights, dtype=dtype)
    if weights.dim() != 1 or not len(weights) == len(means) == len(scales):
        raise ValueError(f"need one weight, mean and scale per component, got {len(weights)}, {len(means)}, {len(scales)}")
    if torch.any(weights < 0) or not math.isclose(weights.sum().item(), 1.0, abs_tol=1e-9):
        raise ValueError(f"weights must be non-negative and sum to 1, got {weights.tolist()}")
    components = Normal(torch.tensor(means, dtype=dtype), torch.tensor(scales, dtype=dtype))
    return MixtureSameFamily(Categorical(probs=weights), components)


def fit_forward_kl(mixture: MixtureSameFamily) -> Normal:
    r"""The Gaussian :math:`q = \mathcal{N}(m, s^2)` that minimises the forward :math:`\mathrm{KL}(p \,\|\, q)`:
    moment matching,

    .. math::

        m = \mathbb{E}_p[x] = \sum_k w_k \mu_k, \quad
        s^2 = \mathrm{Var}_p[x] = \sum_k w_k (s_k^2 + \mu_k^2) - m^2,

    the mixture's ``mean`` and ``variance`` as ``torch.distributions.MixtureSameFamily`` computes them.

    Why: :math:`\mathrm{KL}(p \,\|\, q) = \mathbb{E}_p[\log p] - \mathbb{E}_p[\log q]`, and only the second
    term depends on :math:`q`:

    .. math::

        -\mathbb{E}_p[\log q(x)] = \frac{1}{2} \log(2 \pi s^2) + \frac{\mathbb{E}_p[(x - m)^2]}{2 s^2}.

    Its derivative in :math:`m` vanishes at :math:`m = \mathbb{E}_p[x]`; then its derivative in :math:`s`
    vanishes at :math:`s^2 = \mathbb{E}_p[(x - m)^2] = \mathrm{Var}_p[x]`. It is convex in :math:`q`'s natural
    parameters :math:`(m / s^2, 1 / s^2)`, as for every exponential family, so this stationary point is the
    global minimum.
    """
    return Normal(mixture.mean, mixture.variance.sqrt())


def reverse_kl(
    target: Distribution, mean: torch.Tensor, log_scale: torch.Tensor, num_points: int = 1001, width: float = 10.0
) -> torch.Tensor:
    r"""The reverse :math:`\mathrm{KL}(q \,\|\, p)` of :math:`q = \mathcal{N}(m, s^2)`,
    :math:`s = \exp(\mathtt{log\_scale})`,
    to a 1-d density :math:`p` (``target``), differentiable in ``mean`` and ``log_scale``:

    .. math::

        \mathrm{KL}(q \,\|\, p) &= \mathbb{E}_q[\log q(x)] - \mathbb{E}_q[\log p(x)] \\
            &= -H(q) - \mathbb{E}_{\epsilon \sim \mathcal{N}(0, 1)}[\log p(m + s \epsilon)],
            \quad H(q) = \frac{1}{2} \log(2 \pi e s^2).

    The first term is minus :math:`q`'s entropy (``Normal.entropy``). The second is reparameterised,
    :math:`x = m + s \epsilon`, so that it is an expectation over a distribution that does not depend on
    :math:`(m, s)`; it is computed by numerical quadrature on ``num_points`` fixed points :math:`\epsilon_i`,
    uniformly spaced in [-width, width], with weights :math:`v_i` proportional to the
    :math:`\mathcal{N}(0, 1)` density: :math:`\mathbb{E}[f(\epsilon)] \approx \sum_i v_i f(\epsilon_i)`.
    Deterministic, where a VAE averages over random :math:`\epsilon` (notebook 05). ``mean`` and ``log_scale`` may
    carry a batch shape; the result has that shape.
    """
    eps = torch.linspace(-width, width, num_points, dtype=mean.dtype, device=mean.device)  # (num_points,)
    weights = torch.exp(-0.5 * eps.pow(2))
    weights = weights / weights.sum()  # trapezoid rule, up to the end points (weight e^-50 at width 10)
    x = mean.unsqueeze(-1) + log_scale.exp().unsqueeze(-1) * eps  # (..., num_points)
    cross_entropy = -(weights * target.log_prob(x)).sum(dim=-1)  # -E_q[log p(x)]
    return cross_entropy - Normal(mean, log_scale.exp()).entropy()


class ReverseKLFit(NamedTuple):
    """The result of ``fit_reverse_kl``: the fitted :math:`q`, and the path taken, one row per step."""

    q: Normal
    means: torch.Tensor  # (num_steps + 1,)
    scales: torch.Tensor  # (num_steps + 1,)
    kls: torch.Tensor  # (num_steps + 1,) KL(q || p) at each point of the path


def fit_reverse_kl(
    target: Distribution,
    init_mean: float,
    init_scale: float = 1.0,
    num_steps: int = 300,
    lr: float = 0.1,
) -> ReverseKLFit:
    r"""The Gaussian :math:`q = \mathcal{N}(m, s^2)` that minimises the reverse :math:`\mathrm{KL}(q \,\|\, p)`
    locally, by gradient descent on :math:`(m, \log s)` from (``init_mean``, log ``init_scale``):

    .. math::

        (m, \log s) \leftarrow (m, \log s) - \text{lr} \cdot \nabla \mathrm{KL}(q \,\|\, p),

    with :math:`\mathrm{KL}(q \,\|\, p)` from ``reverse_kl``. There is no closed form: for a multimodal
    :math:`p` the reverse KL has one local minimum per well-separated mode, and the starting point decides
    which one is found. Optimising :math:`\log s` keeps :math:`s` positive. Deterministic: the same arguments give the
    same fit.
    """
    dtype = target.mean.dtype
    mean = torch.tensor(float(init_mean), dtype=dtype, requires_grad=True)
    log_scale = torch.tensor(math.log(init_scale), dtype=dtype, requires_grad=True)
    means, scales, kls = [], [], []
    for step in range(num_steps + 1):
        kl = reverse_kl(target, mean, log_scale)
        means.append(mean.item())
        scales.append(log_scale.exp().item())
        kls.append(kl.item())
        if step == num_steps:
            break
        grad_mean, grad_log_scale = torch.autograd.grad(kl, (mean, log_scale))
        with torch.no_grad():
            mean -= lr * grad_mean
            log_scale -= lr * grad_log_scale
    q = Normal(mean.detach(), log_scale.detach().exp())
    return ReverseKLFit(q, torch.tensor(means, dtype=dtype), torch.tensor(scales, dtype=dtype),
                        torch.tensor(kls, dtype=dtype))


def grid_kl(
    p: Distribution, q: Distribution, lower: float = -20.0, upper: float = 20.0, num_points: int = 8001
) -> torch.Tensor:
    r""":math:`\mathrm{KL}(p \,\|\, q)` between two 1-d densities by numerical integration on a uniform grid:

    .. math::

        \mathrm{KL}(p \,\|\, q) = \int p(x) \left(\log p(x) - \log q(x)\right) dx,

    by the trapezoidal rule on [lower, upper]. An independent reference for every other KL in
    notebook 03: it uses only the two log-densities. The grid must cover the mass of :math:`p` (what lies
    outside is dropped). ``p`` and ``q`` may carry batch
    shapes (e.g. a grid of Gaussians); the result has their broadcast batch shape.
    """
    batch_shape = torch.broadcast_shapes(p.batch_shape, q.batch_shape)
    x = torch.linspace(lower, upper, num_points, dtype=p.mean.dtype, device=p.mean.device)
    x = x.reshape(num_points, *([1] * len(batch_shape)))  # (num_points, 1, ..., 1): broadcasts over batches
    log_p, log_q = p.log_prob(x), q.log_prob(x)  # (num_points, *batch_shape)
    integrand = log_p.exp() * (log_p - log_q)
    return torch.trapezoid(integrand, dx=(upper - lower) / (num_points - 1), dim=0)
