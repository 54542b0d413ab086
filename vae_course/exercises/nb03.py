"""Checks for the exercises of notebook 03 (the KL divergence).

Each check raises an ``AssertionError`` that names the mistake and the method, never the expected
number, and returns ``None`` for a right answer. The references are independent of what the exercise
asks the learner to call: ``torch.distributions.kl_divergence`` for a learner's closed form, numerical
integration on a grid for a fit found by gradient descent, a matrix inverse for a fit found by an
optimiser.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch.distributions import Normal, kl_divergence

from ..toy.mixture import bimodal_mixture, grid_kl
from ._common import numbers

__all__ = ["EXERCISE_4_RHO", "EXERCISE_4_SCALES", "check_exercise_1", "check_exercise_2", "check_exercise_3",
           "check_exercise_4"]

EXERCISE_4_RHO = 0.99  # the correlation of exercise 4's target
EXERCISE_4_SCALES = (1.0, 2.0)  # its marginal standard deviations


def check_exercise_1(kl_normal: Callable[..., torch.Tensor]) -> None:
    r"""Exercise 1: ``kl_normal(mu_q, sigma_q, mu_p, sigma_p)`` =
    :math:`\mathrm{KL}(\mathcal{N}(\mu_q, \sigma_q^2) \,\|\, \mathcal{N}(\mu_p, \sigma_p^2))`,

    .. math::

        \log \frac{\sigma_p}{\sigma_q} + \frac{\sigma_q^2 + (\mu_q - \mu_p)^2}{2 \sigma_p^2} - \frac{1}{2},

    compared with ``torch.distributions.kl_divergence`` on 8 random pairs (float64), and on the case
    :math:`\mathrm{KL}(\mathcal{N}(\mu, 1) \,\|\, \mathcal{N}(0, 1)) = \mu^2 / 2` that can be checked by hand.
    """
    generator = torch.Generator().manual_seed(3)
    mu_q, mu_p = 2 * torch.randn(2, 8, generator=generator, dtype=torch.float64)
    sigma_q, sigma_p = torch.exp(torch.randn(2, 8, generator=generator, dtype=torch.float64))
    expected = kl_divergence(Normal(mu_q, sigma_q), Normal(mu_p, sigma_p))
    got = torch.as_tensor(kl_normal(mu_q, sigma_q, mu_p, sigma_p), dtype=torch.float64)
    assert got.shape == expected.shape, (
        f"expected one KL per pair, a tensor of shape {tuple(expected.shape)}, got shape {tuple(got.shape)}: "
        "compute it elementwise, without summing")
    if torch.allclose(got, kl_divergence(Normal(mu_p, sigma_p), Normal(mu_q, sigma_q)), rtol=1e-9, atol=1e-12):
        raise AssertionError("your function computes KL(p || q), the other direction: the average must be over q, "
                             "so E_q[(z - mu_p)^2] = sigma_q^2 + (mu_q - mu_p)^2 is divided by 2 sigma_p^2")
    assert torch.allclose(got, expected, rtol=1e-9, atol=1e-12), (
        "your KL differs from torch.distributions.kl_divergence on random pairs: check the sign of the "
        "log(sigma_p / sigma_q) term, the -1/2, and that sigma_q^2 + (mu_q - mu_p)^2 is divided by 2 sigma_p^2 "
        "(variances, not standard deviations)")
    mu = torch.linspace(-3, 3, 7, dtype=torch.float64)
    ones, zeros = torch.ones(7, dtype=torch.float64), torch.zeros(7, dtype=torch.float64)
    got_special = torch.as_tensor(kl_normal(mu, ones, zeros, ones), dtype=torch.float64)
    assert torch.allclose(got_special, mu**2 / 2), "KL(N(mu, 1) || N(0, 1)) should equal mu^2 / 2"


def check_exercise_2(answer: Sequence[float]) -> None:
    r"""Exercise 2: ``answer = (KL(q || p), KL(p || q))`` in nats for :math:`q = \mathcal{N}(2, 0.5^2)`,
    :math:`p = \mathcal{N}(0, 1)`.

    The reference is ``torch.distributions.kl_divergence`` of the two ``Normal`` distributions, to 1e-4 nats (a grid
    integral or a closed form both qualify).
    """
    assert len(answer) == 2, "answer_2 should be a pair (KL(q || p), KL(p || q))"
    got_q_p, got_p_q = numbers(answer, 2, "answer_2")
    p_ex = Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
    q_ex = Normal(torch.tensor(2.0, dtype=torch.float64), torch.tensor(0.5, dtype=torch.float64))
    kl_q_p, kl_p_q = kl_divergence(q_ex, p_ex).item(), kl_divergence(p_ex, q_ex).item()
    close = lambda a, b: abs(a - b) < 1e-4  # noqa: E731
    if close(got_q_p, kl_p_q) and close(got_p_q, kl_q_p):
        raise AssertionError("your two numbers are swapped: the first should be KL(q || p), an average over q")
    for got, right, name in ((got_q_p, kl_q_p, "KL(q || p)"), (got_p_q, kl_p_q, "KL(p || q)")):
        if close(got * math.log(2), right):
            raise AssertionError(f"{name} is in bits (log base 2): the course uses natural logarithms, nats")
        assert close(got, right), (
            f"{name} is not right: average log(first / second) over the first distribution, with natural logs "
            "(your kl_normal from exercise 1, or grid_kl(first, second))")


def check_exercise_3(answer: Sequence[float]) -> None:
    r"""Exercise 3: ``answer = (forward_scale, reverse_scale)``, the standard deviations of the Gaussians
    fitted to the one-hump mixture :math:`0.5 \, \mathcal{N}(-1, 1) + 0.5 \, \mathcal{N}(1, 1)` by the forward
    and the reverse KL.

    Forward: moment matching, :math:`\mathrm{Var} = \sum_k w_k (s_k^2 + \mu_k^2) - \text{mean}^2 = 2`, so the
    scale is :math:`\sqrt{2}`. Reverse: by symmetry the mean is 0; the scale :math:`s` must minimise
    :math:`\mathrm{KL}(\mathcal{N}(0, s^2) \,\|\, p)`, which is checked by numerical integration on a grid
    (``grid_kl``, not the quadrature ``fit_reverse_kl`` descends on): the KL at :math:`s` must be below the
    KL at :math:`s (1 - 0.002)` and at :math:`s (1 + 0.002)`, so :math:`s` lies within 0.1 % of the minimiser.
    """
    assert len(answer) == 2, "answer_3 should be a pair (forward_scale, reverse_scale)"
    forward_scale, reverse_scale = numbers(answer, 2, "answer_3")
    assert forward_scale > 0 and reverse_scale > 0, "standard deviations are positive"
    if abs(forward_scale - 2) < 1e-3 * 2:
        raise AssertionError("the forward scale you gave is the variance: the answer is a standard deviation")
    assert abs(forward_scale - math.sqrt(2)) < 1e-3 * math.sqrt(2), (
        "the forward fit matches the mixture's variance: Var = sum_k w_k (s_k^2 + mu_k^2) - mean^2; "
        "give its square root")
    assert reverse_scale < forward_scale, (
        "the reverse-KL scale should be the narrower one: fit it with fit_reverse_kl (not by moment matching), "
        "and give its standard deviation, not its variance")
    target = bimodal_mixture(means=(-1.0, 1.0), scales=(1.0, 1.0), weights=(0.5, 0.5))
    scales = torch.tensor([1 - 2e-3, 1.0, 1 + 2e-3], dtype=torch.float64) * reverse_scale
    kls = grid_kl(Normal(torch.zeros(3, dtype=torch.float64), scales), target)  # (3,) KL(q || p) by integration
    assert kls[1] < kls[0] and kls[1] < kls[2], (
        "the reverse scale does not minimise KL(q || p): a slightly "
        f"{'wider' if kls[2] < kls[1] else 'narrower'} q has a smaller reverse KL (measured by grid integration). "
        "Give fit_reverse_kl(p_one_hump, init_mean=0.5).q.scale, a standard deviation, not a variance")


def check_exercise_4(answer: Sequence[float]) -> None:
    r"""Exercise 4: ``answer`` = the two variances :math:`(s_1^2, s_2^2)` of the factorised Gaussian fitted by
    the reverse KL to :math:`\mathcal{N}(\mu, \Sigma)` with correlation ``EXERCISE_4_RHO`` and standard deviations
    ``EXERCISE_4_SCALES``.

    The reference is Bishop's closed form :math:`s_i^2 = 1 / \Lambda_{ii}`, :math:`\Lambda = \Sigma^{-1}`
    computed by ``torch.linalg.inv``; the fit must agree to 0.1 %.
    """
    got = torch.tensor(numbers(answer, 2, "answer_4"), dtype=torch.float64)
    std = torch.tensor(EXERCISE_4_SCALES, dtype=torch.float64)
    correlation = torch.tensor([[1.0, EXERCISE_4_RHO], [EXERCISE_4_RHO, 1.0]], dtype=torch.float64)
    covariance = correlation * std[:, None] * std[None, :]
    precision = torch.linalg.inv(covariance)
    expected = 1 / precision.diagonal()
    close = lambda a, b: bool(torch.allclose(a, b, rtol=1e-3, atol=0))  # noqa: E731
    if close(got, covariance.diagonal()):
        raise AssertionError("those are the marginal variances Sigma_ii, what the forward KL (moment matching) "
                             "gives: fit the reverse KL(q || p)")
    if close(got, precision.diagonal()):
        raise AssertionError("those are the diagonal entries of the precision Lambda: a variance is 1 / Lambda_ii")
    if close(got, expected.sqrt()):
        raise AssertionError("those are standard deviations: square them (q.variance, not q.stddev)")
    previous = torch.tensor([[1.0, 0.9], [0.9, 1.0]], dtype=torch.float64) * std[:, None] * std[None, :]
    if close(got, 1 / torch.linalg.inv(previous).diagonal()):
        raise AssertionError("that is the fit at the notebook's correlation 0.9: rebuild the target with rho = 0.99")
    assert close(got, expected), (
        "the variances do not match the closed form 1 / Lambda_ii (Bishop, section 10.1.2): fit a diagonal "
        "Gaussian q (independent coordinates) by minimising KL(q || p) to convergence, and give q.variance")
