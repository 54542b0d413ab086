"""Checks for the exercises of notebook 05 (the reparameterization trick).

Each check raises an ``AssertionError`` that names the mistake and the method, never the expected
number, and returns ``None`` for a right answer. The references do not sample: autograd through a
closed form, ``torch.distributions.Normal.rsample`` for a learner's sampler, Gauss-Hermite quadrature
for a variance the learner measures by Monte Carlo.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.distributions import Normal

from ._common import number, numbers

__all__ = ["EXERCISE_1_MU", "EXERCISE_1_SIGMA", "EXERCISE_4_MU", "EXERCISE_4_SIGMA", "check_exercise_1",
           "check_exercise_2", "check_exercise_3", "check_exercise_4"]

EXERCISE_1_MU, EXERCISE_1_SIGMA = 1.5, 0.8  # q = N(1.5, 0.8^2) in exercise 1
EXERCISE_4_MU, EXERCISE_4_SIGMA = 3.0, 0.5  # q = N(3, 0.5^2) in exercise 4 (the notebook's q has mu = 1)


def check_exercise_1(answer: Sequence[float]) -> None:
    r"""Exercise 1: ``answer = (d_mu, d_log_sigma)``, the exact gradient of
    :math:`\mathbb{E}_q[z^2] = \mu^2 + \sigma^2` for :math:`q = \mathcal{N}(1.5, 0.8^2)`, with respect to
    :math:`\mu` and :math:`\log \sigma`. The reference is autograd through that closed form."""
    d_mu, d_log_sigma = numbers(answer, 2, "answer_1")
    mu = torch.tensor(EXERCISE_1_MU, dtype=torch.float64, requires_grad=True)
    log_sigma = torch.tensor(math.log(EXERCISE_1_SIGMA), dtype=torch.float64, requires_grad=True)
    exact_mu, exact_log_sigma = (g.item() for g in torch.autograd.grad(mu**2 + torch.exp(2 * log_sigma),
                                                                        (mu, log_sigma)))
    assert abs(d_mu - exact_mu) < 1e-6, (
        "d/dmu is not right: E[z^2] = mu^2 + sigma^2, and sigma does not depend on mu, so differentiate mu^2")
    if abs(d_log_sigma - 2 * EXERCISE_1_SIGMA) < 1e-6:
        raise AssertionError("that is the derivative with respect to sigma: the parameter is log sigma, so use the "
                             "chain rule on sigma^2 = exp(2 log sigma)")
    assert abs(d_log_sigma - exact_log_sigma) < 1e-6, (
        "d/dlog_sigma is not right: write sigma^2 = exp(2 log sigma) and differentiate with the chain rule "
        "(the inner derivative is 2)")


def check_exercise_2(my_rsample: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]) -> None:
    r"""Exercise 2: ``my_rsample(mu, sigma, num_samples)`` returns :math:`\mu + \sigma \epsilon`, with
    :math:`\epsilon` = ``torch.randn`` of shape ``(num_samples, *mu.shape)``: with the same seed, exactly
    ``Normal(mu, sigma).rsample((num_samples,))``, with :math:`\partial z / \partial \mu = 1` and
    :math:`\partial z / \partial \sigma = \epsilon`. Reseeds torch's global generator (seed 5)."""
    mu = torch.tensor([0.5, -1.0], dtype=torch.float64, requires_grad=True)
    sigma = torch.tensor([2.0, 0.3], dtype=torch.float64, requires_grad=True)
    torch.manual_seed(5)
    reference = Normal(mu, sigma).rsample((1000,))  # (1000, 2)
    torch.manual_seed(5)
    z = my_rsample(mu, sigma, 1000)
    assert isinstance(z, torch.Tensor) and z.shape == (1000, 2), (
        "expected a tensor of shape (num_samples, *mu.shape): draw eps with that shape")
    assert z.grad_fn is not None, "the result has no grad_fn: build it from mu and sigma, not with sample()"
    eps = (reference.detach() - mu.detach()) / sigma.detach()  # (1000, 2)
    if torch.allclose(z, mu.detach() + sigma.detach() ** 2 * eps):
        raise AssertionError("you scaled the noise by the variance: z = mu + sigma * eps, with the standard deviation")
    assert torch.allclose(z, reference), (
        "with the same seed the draws should equal Normal(mu, sigma).rsample(): draw eps with torch.randn"
        "(shape, dtype=mu.dtype) before anything else, and return mu + sigma * eps")
    d_mu, d_sigma = torch.autograd.grad(z.sum(), (mu, sigma))
    assert torch.allclose(d_mu, torch.full_like(d_mu, 1000.0)), "dz/dmu should be 1 for every sample"
    assert torch.allclose(d_sigma, eps.sum(dim=0)), "dz/dsigma should be the noise eps of each sample"


def check_exercise_3(answer: Sequence[float]) -> None:
    r"""Exercise 3: ``answer = (pathwise, exact)`` for :math:`z = \mathbb{1}[u < p]`, :math:`p = 0.3`: the
    derivative :math:`dz/dp` at fixed :math:`u` (0: a step function is flat off its step) and
    :math:`\frac{d}{dp} \mathbb{E}[z] = \frac{d}{dp} p = 1`."""
    pathwise, exact = numbers(answer, 2, "answer_3")
    assert abs(pathwise) < 1e-9, (
        "for a fixed u, 1[u < p] is a step function of p: flat on both sides of p = u, so its derivative is 0")
    if abs(exact - 0.3) < 1e-9:
        raise AssertionError("that is E[z] itself: the exact answer is its derivative with respect to p")
    assert abs(exact - 1.0) < 1e-9, "E[z] = P(z = 1) = p: differentiate it with respect to p"


def _one_sample_variances(mu: float, sigma: float) -> tuple[float, float]:
    """Var of the one-sample d/dmu terms of E[z^2], z ~ N(mu, sigma^2), by Gauss-Hermite quadrature:
    the score function's f(z) eps / sigma and the reparameterized 2 z (exact: both are polynomials in eps)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(20)  # weight exp(-eps^2 / 2)
    weights = weights / math.sqrt(2 * math.pi)  # now E[g(eps)] = sum_i w_i g(eps_i), eps ~ N(0, 1)
    z = mu + sigma * nodes
    variance = lambda terms: float(weights @ terms**2 - (weights @ terms) ** 2)  # noqa: E731
    return variance(z**2 * nodes / sigma), variance(2 * z)


def check_exercise_4(answer: float) -> None:
    r"""Exercise 4: ``answer`` = Var(score-function term) / Var(reparameterized term) for
    :math:`\frac{\partial}{\partial \mu} \mathbb{E}[z^2]` with :math:`q = \mathcal{N}(3, 0.5^2)`, measured by Monte
    Carlo from one-sample terms. The reference is the exact ratio by
    Gauss-Hermite quadrature; a measurement from 100,000 samples or more agrees to 5 %."""
    ratio = number(answer, "answer_4")
    score, pathwise = _one_sample_variances(EXERCISE_4_MU, EXERCISE_4_SIGMA)
    close = lambda got, right: abs(got / right - 1) < 0.05  # noqa: E731
    if close(ratio, pathwise / score):
        raise AssertionError("the ratio is upside down: divide the score function's variance by the "
                             "reparameterized one")
    notebook_score, notebook_pathwise = _one_sample_variances(1.0, EXERCISE_4_SIGMA)
    # At mu = 3 the ratio of standard deviations happens to lie close to the ratio of variances at mu = 1.
    if close(ratio, math.sqrt(score / pathwise)) or close(ratio, notebook_score / notebook_pathwise):
        raise AssertionError("that is either the ratio at the notebook's mu = 1 (move q to mu = 3) or a ratio of "
                             "standard deviations (compare variances: .var(), not .std())")
    assert ratio > 0 and close(ratio, score / pathwise), (
        "the ratio does not match: take one-sample d/dmu terms (per_sample_grad_mu) of E[z^2] at mu = 3, "
        "sigma = 0.5 from at least 100,000 samples, for both estimators, and divide their variances")
