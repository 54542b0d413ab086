"""The checks of notebook 03's exercises accept the right answer and reject typical mistakes.

The right answers are computed here independently of ``vae_course.exercises.nb03``: closed forms written
out, and a golden-section search on a numpy integral for the one-hump reverse fit.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vae_course.exercises import nb03


# --- exercise 1: a closed-form KL between univariate Gaussians


def synthetic_kl_normal(mu_q, sigma_q, mu_p, sigma_p):
    return torch.log(sigma_p / sigma_q) + (sigma_q**2 + (mu_q - mu_p) ** 2) / (2 * sigma_p**2) - 0.5


def test_exercise_1_accepts_the_closed_form():
    nb03.check_exercise_1(synthetic_kl_normal)


@pytest.mark.parametrize("mistake", [
    lambda mq, sq, mp, sp: torch.log(sq / sp) + (sq**2 + (mq - mp) ** 2) / (2 * sp**2) - 0.5,  # log term's sign
    lambda mq, sq, mp, sp: synthetic_kl_normal(mp, sp, mq, sq),  # the other direction, KL(p || q)
    lambda mq, sq, mp, sp: torch.log(sp / sq) + (sq + (mq - mp) ** 2) / (2 * sp) - 0.5,  # std for variance
    lambda mq, sq, mp, sp: torch.log(sp / sq) + (sq**2 + (mq - mp) ** 2) / (2 * sp**2),  # no -1/2
    lambda mq, sq, mp, sp: synthetic_kl_normal(mq, sq, mp, sp).sum(),  # summed over the pairs
], ids=["wrong-sign-log", "other-direction", "std-for-variance", "no-minus-half", "summed"])
def test_exercise_1_rejects(mistake):
    with pytest.raises(AssertionError):
        nb03.check_exercise_1(mistake)


def test_exercise_1_names_the_other_direction():
    with pytest.raises(AssertionError, match="other direction"):
        nb03.check_exercise_1(lambda mq, sq, mp, sp: synthetic_kl_normal(mp, sp, mq, sq))


# --- exercise 2: both directions for q = N(2, 0.5^2), p = N(0, 1), by the closed form written out

KL_Q_P = math.log(1 / 0.5) + (0.5**2 + (2 - 0) ** 2) / (2 * 1**2) - 0.5
KL_P_Q = math.log(0.5 / 1) + (1**2 + (0 - 2) ** 2) / (2 * 0.5**2) - 0.5


def test_exercise_2_accepts_both_directions():
    nb03.check_exercise_2((KL_Q_P, KL_P_Q))
    nb03.check_exercise_2((round(KL_Q_P, 5), round(KL_P_Q, 5)))  # rounded to five decimals


@pytest.mark.parametrize("mistake, message", [
    ((KL_P_Q, KL_Q_P), "swapped"),
    ((KL_Q_P / math.log(2), KL_P_Q / math.log(2)), "bits"),
    ((-KL_Q_P, KL_P_Q), "not right"),
    ((KL_Q_P, KL_P_Q + 0.01), "not right"),
])
def test_exercise_2_rejects(mistake, message):
    with pytest.raises(AssertionError, match=message):
        nb03.check_exercise_2(mistake)


# --- exercise 3: the one-hump mixture 0.5 N(-1, 1) + 0.5 N(1, 1)


def synthetic_reverse_kl(scale: float) -> float:
    """KL(N(0, scale^2) || mixture) by the trapezoidal rule in numpy: no torch, no vae_course."""
    x = np.linspace(-30, 30, 60_001)
    log_q = -0.5 * (x / scale) ** 2 - math.log(scale * math.sqrt(2 * math.pi))
    components = np.stack([-0.5 * (x - m) ** 2 for m in (-1.0, 1.0)]) - 0.5 * math.log(2 * math.pi)
    log_p = np.logaddexp(*components) + math.log(0.5)
    integrand = np.exp(log_q) * (log_q - log_p)
    return float(np.sum((integrand[1:] + integrand[:-1]) / 2 * np.diff(x)))  # np.trapz is gone in numpy 2


def synthetic_reverse_scale() -> float:
    """The minimiser of synthetic_reverse_kl by golden-section search on [1, 2]."""
    low, high, ratio = 1.0, 2.0, (math.sqrt(5) - 1) / 2
    for _ in range(40):
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if synthetic_reverse_kl(a) < synthetic_reverse_kl(b):
            high = b
        else:
            low = a
    return (low + high) / 2


REVERSE_SCALE = synthetic_reverse_scale()


def test_exercise_3_reference_is_narrower_than_moment_matching():
    assert 1.3 < REVERSE_SCALE < math.sqrt(2)


def test_exercise_3_accepts_the_two_fits():
    nb03.check_exercise_3((math.sqrt(2), REVERSE_SCALE))
    nb03.check_exercise_3((1.414, round(REVERSE_SCALE, 3)))  # rounded to three decimals


@pytest.mark.parametrize("mistake", [
    (REVERSE_SCALE, math.sqrt(2)),  # swapped
    (2.0, REVERSE_SCALE),  # the forward variance, not its scale
    (math.sqrt(2), REVERSE_SCALE**2),  # the reverse variance
    (math.sqrt(2), math.sqrt(2)),  # the reverse fit taken to be the moment-matched one
    (math.sqrt(2), 1.0),  # one component's scale
    (math.sqrt(2), 0.98 * REVERSE_SCALE),  # a fit stopped early
])
def test_exercise_3_rejects(mistake):
    with pytest.raises(AssertionError):
        nb03.check_exercise_3(mistake)


# --- exercise 4: a factorised reverse-KL fit at rho = 0.99 has variances sigma_i^2 (1 - rho^2)

RHO = nb03.EXERCISE_4_RHO
STD = np.array(nb03.EXERCISE_4_SCALES)


def test_exercise_4_accepts_the_closed_form():
    assert RHO == 0.99 and tuple(STD) == (1.0, 2.0)  # the exercise's text says so
    nb03.check_exercise_4(STD**2 * (1 - RHO**2))
    nb03.check_exercise_4(torch.tensor(STD**2 * (1 - RHO**2)))  # q.variance, a tensor


@pytest.mark.parametrize("mistake, message", [
    (STD**2, "marginal"),  # the forward fit
    (STD * math.sqrt(1 - RHO**2), "standard deviations"),
    (1 / (STD**2 * (1 - RHO**2)), "precision"),  # Lambda_ii, not inverted
    (STD**2 * (1 - 0.9**2), "0.9"),  # the target not changed
    (STD**2 * (1 - RHO), "closed form"),
])
def test_exercise_4_rejects(mistake, message):
    with pytest.raises(AssertionError, match=message):
        nb03.check_exercise_4(mistake)
