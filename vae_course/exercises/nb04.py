"""Checks for the exercises of notebook 04 (the ELBO).

Each ``check_exercise_*`` returns ``None`` for a right answer and raises an ``AssertionError`` whose
message names the mistake and the method, never the expected number. The notebook passes in the state a
check needs (the linear-Gaussian model of section 2, its observation x, the exact posterior), so the same
checks run in ``tests/test_exercises_04.py`` on synthetic models.
"""

from __future__ import annotations

import math
from functools import partial

import torch
from torch.distributions import MultivariateNormal, kl_divergence

from ..toy.linear_gaussian import LinearGaussian, analytic_elbo
from ._common import is_close, number

EXERCISE_1_SHIFT = (0.5, -0.5)  # delta of exercise 1: along the posterior's long axis
EXERCISE_2_SAMPLES = 100_000  # the fewest prior samples exercise 2 asks for
EXERCISE_3_BETA = 2.0  # the weight on the KL term in exercise 3
EXERCISE_3_TOLERANCE = 0.2  # relative: a few hundred noisy gradient steps land within a few per cent


def check_exercise_1(answer: float, posterior: MultivariateNormal) -> None:
    r"""Exercise 1: the gap :math:`\log p(x) - \mathrm{ELBO}(q)` of :math:`q = \mathcal{N}(\mu + \delta, S)`,
    the exact posterior :math:`\mathcal{N}(\mu, S)` moved by :math:`\delta = (0.5, -0.5)`. By identity (3) the
    gap is :math:`\mathrm{KL}(q \,\|\, p(z \mid x))`; for two Gaussians with the same covariance it is
    :math:`\frac{1}{2} \delta^\top S^{-1} \delta`, in nats."""
    answer = number(answer, "answer_1")
    mean, covariance = posterior.mean, posterior.covariance_matrix
    delta = torch.tensor(EXERCISE_1_SHIFT, dtype=mean.dtype, device=mean.device)

    def gap(shift: torch.Tensor) -> float:
        return kl_divergence(MultivariateNormal(mean + shift, covariance), posterior).item()

    expected = gap(delta)
    close = partial(is_close, answer, rtol=1e-3, atol=1e-4)
    assert answer >= 0, ("the gap log p(x) - ELBO is a KL divergence, never negative: you have the wrong sign "
                         "(ELBO - log p(x)), or you entered the ELBO itself")
    if close(expected):
        return
    assert not close(gap(delta.abs())), (
        "that is the gap of the shift (0.5, 0.5), the row of section 2's table; this exercise shifts by (0.5, -0.5)")
    assert not close(0.5 * (delta @ covariance @ delta).item()), (
        "you used the covariance S where the formula needs its inverse: 1/2 delta^T S^-1 delta (the precision)")
    assert not close(2 * expected), "you dropped the factor 1/2 of 1/2 delta^T S^-1 delta"
    assert not close(expected / math.log(2)), "that is in bits (log base 2): the course works in nats"
    raise AssertionError("not the gap of q = N(mean + (0.5, -0.5), S): compute log_evidence - analytic_elbo(model, q, x) "
                         "with q = MultivariateNormal(posterior.mean + delta, posterior.covariance_matrix), "
                         "or 1/2 delta^T S^-1 delta by hand")


def _prior_reconstruction_spread(model: LinearGaussian, x: torch.Tensor) -> float:
    """The standard deviation of log p(x|z) under z ~ p(z), in closed form.

    log p(x|z) = c - ||y||^2 / (2 sigma^2) with y = x - b - W z ~ N(x - b, A), A = W W^T, and a Gaussian
    quadratic form has Var ||y||^2 = 2 tr(A^2) + 4 (x - b)^T A (x - b).
    """
    residual = x - model.bias
    a = model.weight @ model.weight.T
    variance = 2 * (a @ a).trace() + 4 * residual @ a @ residual
    return (variance.sqrt() / (2 * model.noise_scale**2)).item()


def check_exercise_2(answer: float, model: LinearGaussian, x: torch.Tensor) -> None:
    r"""Exercise 2: a Monte Carlo estimate of the ELBO of :math:`q = p(z)`,
    :math:`\mathbb{E}_{p(z)}[\log p(x \mid z)]` (the KL-to-prior term is zero), from at least 100,000 prior samples.
    It must lie within five standard errors of such
    an estimate of the closed form ``analytic_elbo(model, p(z), x)``."""
    answer = number(answer, "answer_2")
    zeros = torch.zeros(model.latent_dim, dtype=model.weight.dtype, device=model.weight.device)
    prior = MultivariateNormal(zeros, torch.diag_embed(torch.ones_like(zeros)))
    expected = analytic_elbo(model, prior, x).item()  # reconstruction only: KL(p(z) || p(z)) = 0
    tolerance = 5 * _prior_reconstruction_spread(model, x) / math.sqrt(EXERCISE_2_SAMPLES)
    if abs(answer - expected) <= tolerance:
        return
    assert answer < 0, ("a log-density of x averaged over codes that know nothing about x is far below zero here: "
                        "you have the wrong sign (a loss, -log p(x|z), instead of log p(x|z))")
    assert abs(answer - model.evidence().log_prob(x).item()) > tolerance, (
        "that is log p(x), the ELBO of the exact posterior; this exercise asks for the ELBO of q = p(z), "
        "codes drawn from the prior")
    assert abs(answer) < 100 * abs(expected), ("you summed log p(x|z) over the samples: the expectation is their "
                                               "mean, .mean() over the sample dimension")
    assert abs(answer - expected / math.log(2)) > tolerance, "that is in bits (log base 2): the course works in nats"
    raise AssertionError("more than five standard errors from the ELBO of q = p(z): average model.decode(z).log_prob(x) "
                         "over z = model.prior.sample((n,)) with n >= 100,000 (log_prob of the decoder, not of the prior)")


def check_exercise_3(answer: float, model: LinearGaussian, x: torch.Tensor) -> None:
    r"""Exercise 3: the gap :math:`\log p(x) - \mathrm{ELBO}(q)` after maximising the beta-objective
    :math:`\mathbb{E}_q[\log p(x \mid z)] - \beta \, \mathrm{KL}(q \,\|\, p(z))`, :math:`\beta = 2`, over a
    full-covariance Gaussian :math:`q`.

    For the linear-Gaussian model the maximiser is known:

    .. math::

        \text{beta-objective} = -\beta \, \mathrm{KL}(q \,\|\, r) + \text{const}, \quad
        r(z) \propto p(x \mid z)^{1/\beta} p(z),

    the exact posterior of the same model with noise variance :math:`\beta \sigma^2`. The answer must be
    within 20 % of :math:`\mathrm{KL}(r \,\|\, p(z \mid x))`, the gap of that :math:`q`."""
    answer = number(answer, "answer_3")
    posterior = model.posterior(x)

    def optimum(beta: float) -> MultivariateNormal:
        r"""The maximiser of the beta-objective: the posterior under noise variance :math:`\beta \sigma^2`."""
        return LinearGaussian(model.weight, model.bias, model.noise_scale * math.sqrt(beta)).posterior(x)

    q_beta = optimum(EXERCISE_3_BETA)
    expected = kl_divergence(q_beta, posterior).item()
    if abs(answer - expected) <= EXERCISE_3_TOLERANCE * expected:
        return
    assert answer >= 0, ("the gap log p(x) - ELBO is a KL divergence, never negative: you have the wrong sign, or "
                         "entered the ELBO (or the beta-objective) itself rather than log_evidence minus it")
    assert answer > 0.1 * expected, (
        "your gap is essentially zero: that is what beta = 1 gives (the full-covariance q finds the posterior); "
        "the loss must be -(terms.reconstruction - beta * terms.kl).mean() with beta = 2")
    prior = MultivariateNormal(torch.zeros_like(q_beta.mean), torch.diag_embed(torch.ones_like(q_beta.mean)))
    mistakes = {  # what a typical mistake measures instead, and what to say about it
        "that is the gap for beta = 1/2: you put the factor 2 on the reconstruction term; the beta-objective "
        "weighs the KL term, reconstruction - beta * KL": kl_divergence(optimum(1 / EXERCISE_3_BETA), posterior).item(),
        "that is KL(p(z|x) || q), the other direction: the gap of identity (3) is KL(q || p(z|x)), "
        "or simply log_evidence - analytic_elbo(model, q, x)": kl_divergence(posterior, q_beta).item(),
        "that is KL(q || p(z)), the rate (the KL to the prior); the gap is KL(q || p(z|x)) = "
        "log p(x) - ELBO(q)": kl_divergence(q_beta, prior).item(),
    }
    distances = {message: abs(answer - value) for message, value in mistakes.items()}
    nearest = min(distances, key=distances.get)
    assert distances[nearest] > EXERCISE_3_TOLERANCE * expected, nearest
    raise AssertionError(
        "not the gap of the beta = 2 optimum: start from VariationalGaussian(model), step Adam on "
        "-(terms.reconstruction - 2 * terms.kl).mean() with terms = elbo_terms(q_model, x.expand(K, 3)) for "
        "NUM_STEPS steps with the cosine schedule, then measure log_evidence - analytic_elbo(model, q, x) "
        "(a constant step size leaves q jittering: decay it, or use more samples per step)")


def check_exercise_4(answer: int) -> None:
    r"""Exercise 4: the beta that averaging the reconstruction over every value of a 32x32 RGB image
    implies. :math:`\text{mean-recon} - \mathrm{KL} = \frac{1}{n} (\text{sum-recon} - n \, \mathrm{KL})`, so
    averaging over :math:`n` values is :math:`\beta = n`, with :math:`n` = height x width x channels."""
    value = number(answer, "answer_4")
    assert value == int(value), f"beta here is a count of values per image, a whole number; you have {value}"
    assert value != 32 * 32, "each pixel has three colour values, and the average runs over all of them"
    assert value != 28 * 28, "784 is for 28x28 grey images; count the values of a 32x32x3 image"
    assert value not in (3, 32, 96), "the average runs over every value of the image: height x width x channels"
    assert value == 32 * 32 * 3, "averaging over n values per image is beta = n: count height x width x channels"
