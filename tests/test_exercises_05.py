"""The checks of notebook 05's exercises accept the right answer and reject typical mistakes.

The right answers are computed here independently of ``vae_course.exercises.nb05``: derivatives and
moments worked out by hand, and a Monte Carlo measurement with the package's estimators.
"""

from __future__ import annotations

import math

import pytest
import torch

from vae_course.exercises import nb05
from vae_course.gradients import reparameterized_gradient, score_function_gradient

# --- exercise 1: the exact gradient of E[z^2] = mu^2 + sigma^2 at mu = 1.5, sigma = 0.8

D_MU, D_LOG_SIGMA = 2 * 1.5, 2 * 0.8**2


def test_exercise_1_accepts_the_exact_gradient():
    nb05.check_exercise_1((D_MU, D_LOG_SIGMA))
    nb05.check_exercise_1(torch.tensor([D_MU, D_LOG_SIGMA]))


@pytest.mark.parametrize("mistake, message", [
    ((D_MU, 2 * 0.8), "respect to sigma"),  # d/dsigma instead of d/dlog sigma
    ((D_MU, 0.8**2), "chain rule"),  # the inner derivative 2 forgotten
    ((1.5, D_LOG_SIGMA), "d/dmu"),  # mu instead of 2 mu
    ((D_LOG_SIGMA, D_MU), "d/dmu"),  # swapped
    ((D_MU,), "2 numbers"), ((D_MU, float("nan")), "finite"), (("3.0", "1.28"), "other than numbers"),
])
def test_exercise_1_rejects(mistake, message):
    with pytest.raises(AssertionError, match=message):
        nb05.check_exercise_1(mistake)


# --- exercise 2: a reparameterized sampler


def synthetic_rsample(mu, sigma, num_samples):
    return mu + sigma * torch.randn((num_samples, *mu.shape), dtype=mu.dtype)


def test_exercise_2_accepts_mu_plus_sigma_eps():
    nb05.check_exercise_2(synthetic_rsample)


@pytest.mark.parametrize("mistake, message", [
    (lambda mu, sigma, k: mu + sigma**2 * torch.randn((k, *mu.shape), dtype=mu.dtype), "variance"),
    (lambda mu, sigma, k: torch.distributions.Normal(mu, sigma).sample((k,)), "grad_fn"),
    (lambda mu, sigma, k: mu + sigma * torch.randn((k,), dtype=mu.dtype)[:, None], "Normal"),  # one eps per draw
    (lambda mu, sigma, k: mu + sigma * torch.randn((*mu.shape, k), dtype=mu.dtype).T, "Normal"),  # other order
    (lambda mu, sigma, k: (mu + sigma * torch.randn((k, *mu.shape), dtype=mu.dtype)).T, "shape"),
])
def test_exercise_2_rejects(mistake, message):
    with pytest.raises(AssertionError, match=message):
        nb05.check_exercise_2(mistake)


# --- exercise 3: a Bernoulli written as 1[u < p]


def test_exercise_3_accepts_zero_and_one():
    nb05.check_exercise_3((0.0, 1.0))
    nb05.check_exercise_3((0, 1))


@pytest.mark.parametrize("mistake, message", [
    ((1.0, 1.0), "step function"),  # believing the pathwise derivative works
    ((0.0, 0.3), "E\\[z\\] itself"),  # E[z] instead of its derivative
    ((1.0, 0.0), "step function"),  # swapped
])
def test_exercise_3_rejects(mistake, message):
    with pytest.raises(AssertionError, match=message):
        nb05.check_exercise_3(mistake)


# --- exercise 4: the variance ratio of the d/dmu terms of E[z^2] at mu = 3, sigma = 0.5
# Score term z^2 eps / sigma with z = mu + sigma eps: E[(mu + sigma eps)^4 eps^2] = mu^4 + 18 mu^2 sigma^2 + 15 sigma^4,
# minus (2 mu)^2, over sigma^2; the reparameterized term 2 z has variance 4 sigma^2. With r = mu / sigma the
# ratio is (r^4 + 14 r^2 + 15) / 4.


def synthetic_ratio(mu: float, sigma: float) -> float:
    r = mu / sigma
    return (r**4 + 14 * r**2 + 15) / 4


def test_exercise_4_accepts_the_exact_ratio_and_a_measurement():
    assert (nb05.EXERCISE_4_MU, nb05.EXERCISE_4_SIGMA) == (3.0, 0.5)  # the exercise's text says so
    nb05.check_exercise_4(synthetic_ratio(3.0, 0.5))
    mu, log_sigma = torch.tensor(3.0, dtype=torch.float64), torch.tensor(math.log(0.5), dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    score = score_function_gradient(lambda z: z**2, mu, log_sigma, 100_000, generator=generator)
    pathwise = reparameterized_gradient(lambda z: z**2, mu, log_sigma, 100_000, generator=generator)
    measured = score.per_sample_grad_mu.var() / pathwise.per_sample_grad_mu.var()
    nb05.check_exercise_4(measured)  # a tensor, as a learner may pass it


@pytest.mark.parametrize("mistake, message", [
    (1 / synthetic_ratio(3.0, 0.5), "upside down"),
    (math.sqrt(synthetic_ratio(3.0, 0.5)), "standard deviations"),
    (synthetic_ratio(1.0, 0.5), "mu = 1"),  # q not moved
    (synthetic_ratio(3.0, 0.5) * 1.2, "does not match"),
])
def test_exercise_4_rejects(mistake, message):
    with pytest.raises(AssertionError, match=message):
        nb05.check_exercise_4(mistake)
