"""The checks of notebook 02's exercises accept the right answer and reject typical mistakes.

Right answers are computed here independently of the checks' own reference code: exercise 1 from the
Gaussian density of p(x) = N(b, w w^T + sigma^2 I) written out in NumPy, exercise 3 from normalised
weights (ESS = 1 / sum of squared normalised weights), exercise 4 from log-densities written out by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vae_course.exercises import nb02
from vae_course.toy.nonlinear import CurveModel


# --- Exercise 1: log p(x) of a linear decoder on a grid ---------------------------------------------

def gaussian_log_density(x: np.ndarray, mean: np.ndarray, covariance: np.ndarray) -> float:
    difference = x - mean
    _, log_det = np.linalg.slogdet(covariance)
    return float(-0.5 * (len(x) * math.log(2 * math.pi) + log_det + difference @ np.linalg.solve(covariance, difference)))


def exercise_1_grid_terms(scale: float = 0.5, coordinates: slice = slice(None)) -> tuple[np.ndarray, np.ndarray, float]:
    """log p(x|z_g) (with a Gaussian of standard deviation ``scale``), log p(z_g), log dz, by hand."""
    grid = np.linspace(-6, 6, 1201)
    mean = np.stack([2 * grid, 1 - grid], axis=-1)  # f(z) = (2z, 1 - z)
    x = np.array([1.0, 0.2])
    per_coordinate = -0.5 * ((x - mean) / scale) ** 2 - math.log(scale) - 0.5 * math.log(2 * math.pi)
    log_lik = per_coordinate[:, coordinates].sum(axis=-1)
    log_prior = -0.5 * grid**2 - 0.5 * math.log(2 * math.pi)
    return log_lik, log_prior, math.log(grid[1] - grid[0])


def logsumexp(values: np.ndarray) -> float:
    top = values.max()
    return float(top + np.log(np.exp(values - top).sum()))


def test_exercise_1_accepts_the_closed_form_and_the_grid_answer():
    w, b = np.array([2.0, -1.0]), np.array([0.0, 1.0])
    exact = gaussian_log_density(np.array([1.0, 0.2]), b, np.outer(w, w) + 0.25 * np.eye(2))
    nb02.check_exercise_1(exact)
    nb02.check_exercise_1(torch.tensor(exact))  # a one-element tensor is accepted too
    log_lik, log_prior, log_dz = exercise_1_grid_terms()
    grid_answer = logsumexp(log_lik + log_prior) + log_dz
    assert abs(grid_answer - exact) < 1e-6  # the grid the exercise prescribes is fine enough
    nb02.check_exercise_1(grid_answer)


def exercise_1_mistakes() -> dict[str, float]:
    log_lik, log_prior, log_dz = exercise_1_grid_terms()
    return {
        "spacing": logsumexp(log_lik + log_prior),
        "prior": logsumexp(log_lik) + log_dz,
        "coordinate": logsumexp(exercise_1_grid_terms(coordinates=slice(0, 1))[0] + log_prior) + log_dz,
        "standard deviation": logsumexp(exercise_1_grid_terms(scale=0.25)[0] + log_prior) + log_dz,
        "averaged": logsumexp(log_lik + log_prior) - math.log(1201),
        "logsumexp": float((log_lik + log_prior).sum()) + log_dz,
        "forget to take the log": math.exp(logsumexp(log_lik + log_prior) + log_dz),  # p(x), not log p(x)
    }


@pytest.mark.parametrize("mistake", list(exercise_1_mistakes()))
def test_exercise_1_rejects_and_names_a_typical_mistake(mistake):
    with pytest.raises(AssertionError) as error:
        nb02.check_exercise_1(exercise_1_mistakes()[mistake])
    assert mistake in str(error.value)


@pytest.mark.parametrize("answer, message", [(None, "one number"), ("-2.3", "not a number"),
                                             (float("nan"), "work in logs"), (torch.zeros(2), "2 numbers")])
def test_exercise_1_rejects_what_is_not_one_number(answer, message):
    with pytest.raises(AssertionError, match=message):
        nb02.check_exercise_1(answer)


# --- Exercise 2: days for a 12-d grid of 7 points per axis --------------------------------------------

def test_exercise_2_accepts_the_count_of_every_combination():
    seconds_per_day = 24 * 60 * 60
    nb02.check_exercise_2(math.prod([7] * 12) / 1e6 / seconds_per_day)


@pytest.mark.parametrize("answer, named", [
    (12**7 / 1e6 / 86_400, "swapped"),
    (7 * 12 / 1e6 / 86_400, "combination"),
    ((7 ^ 12) / 1e6 / 86_400, "XOR"),
    (7**12 / 1e6, "seconds"),
    (7**12 / 1e6 / 3600, "hours"),
    (1.0, "not quite"),
])
def test_exercise_2_rejects_and_names_a_typical_mistake(answer, named):
    with pytest.raises(AssertionError) as error:
        nb02.check_exercise_2(answer)
    assert named in str(error.value)


# --- Exercise 3: effective sample size of five log-weights --------------------------------------------

SYNTHETIC_LOG_WEIGHTS = np.array([-310.2, -325.9, -309.0, -340.1, -311.5])


def test_exercise_3_accepts_the_ess_from_normalised_weights():
    normalised = np.exp(SYNTHETIC_LOG_WEIGHTS - logsumexp(SYNTHETIC_LOG_WEIGHTS))
    nb02.check_exercise_3(float(1 / (normalised**2).sum()))


@pytest.mark.parametrize("answer, named", [
    (float(SYNTHETIC_LOG_WEIGHTS.sum() ** 2 / (SYNTHETIC_LOG_WEIGHTS**2).sum()), "log-weights as weights"),
    (float((np.exp(SYNTHETIC_LOG_WEIGHTS - SYNTHETIC_LOG_WEIGHTS.max()) ** 2).sum()
           / np.exp(SYNTHETIC_LOG_WEIGHTS - SYNTHETIC_LOG_WEIGHTS.max()).sum() ** 2), "upside down"),
    (5.0, "not quite"),  # K: as if all the weights were equal
    (6.0, "between 1 and"),
])
def test_exercise_3_rejects_and_names_a_typical_mistake(answer, named):
    with pytest.raises(AssertionError) as error:
        nb02.check_exercise_3(answer)
    assert named in str(error.value)


# --- Exercise 4: importance sampling with a proposal r(z) = N(loc, scale^2) ----------------------------

SYNTHETIC_NOISE, SYNTHETIC_X, LOC, SCALE = 0.3, torch.tensor([1.2, -0.4], dtype=torch.float64), 1.1, 0.4


def synthetic_curve(z: torch.Tensor) -> torch.Tensor:
    return torch.cat([z, z**2 - 1], dim=-1)  # a parabola in the plane


def synthetic_model() -> CurveModel:
    return CurveModel(synthetic_curve, noise_scale=SYNTHETIC_NOISE)


def log_normal(value: torch.Tensor, mean: torch.Tensor | float, sd: float) -> torch.Tensor:
    return -0.5 * ((value - mean) / sd) ** 2 - math.log(sd) - 0.5 * math.log(2 * math.pi)


def synthetic_terms(z: torch.Tensor, proposal_sd: float = SCALE) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """log p(x|z), log p(z), log r(z) at codes z (K, 1), written out by hand."""
    log_lik = log_normal(SYNTHETIC_X, synthetic_curve(z), SYNTHETIC_NOISE).sum(dim=-1)
    return log_lik, log_normal(z[:, 0], 0.0, 1.0), log_normal(z[:, 0], LOC, proposal_sd)


def check_4(answer) -> None:
    nb02.check_exercise_4(answer, synthetic_model(), SYNTHETIC_X, loc=LOC, scale=SCALE)


def synthetic_codes(loc: float = LOC, sd: float = SCALE, num: int = 1000) -> torch.Tensor:
    return loc + sd * torch.randn(num, 1, generator=torch.Generator().manual_seed(3), dtype=torch.float64)


def test_exercise_4_accepts_importance_weights_of_codes_drawn_from_the_proposal():
    z = synthetic_codes()
    log_lik, log_prior, log_r = synthetic_terms(z)
    check_4((z, log_lik + log_prior - log_r))
    check_4((z[:, 0], (log_lik + log_prior - log_r)[:, None]))  # (K,) codes and (K, 1) weights are accepted


@pytest.mark.parametrize("mistake, named", [
    ("naive", "naive weights"),
    ("no proposal", "left out - log r(z)"),
    ("no prior", "left out log p(z)"),
    ("sign", "wrong sign"),
    ("variance", "variance"),
    ("prior codes", "not centred"),
    ("narrow codes", "spread"),
    ("few codes", "at least"),
])
def test_exercise_4_rejects_and_names_a_typical_mistake(mistake, named):
    z = synthetic_codes()
    if mistake == "prior codes":
        z = synthetic_codes(loc=0.0, sd=1.0)
    elif mistake == "narrow codes":
        z = synthetic_codes(sd=SCALE / 2)
    elif mistake == "few codes":
        z = z[:10]
    log_lik, log_prior, log_r = synthetic_terms(z)
    log_w = {
        "naive": log_lik,
        "no proposal": log_lik + log_prior,
        "no prior": log_lik - log_r,
        "sign": log_lik + log_prior + log_r,
        "variance": log_lik + log_prior - synthetic_terms(z, proposal_sd=SCALE**2)[2],
    }.get(mistake, log_lik + log_prior - log_r)
    with pytest.raises(AssertionError) as error:
        check_4((z, log_w))
    assert named in str(error.value)


def test_exercise_4_weights_from_the_proposal_estimate_the_evidence_without_bias():
    """Why the exercise asks for these weights: their mean is p(x), here checked against a fine grid."""
    z = synthetic_codes(num=200_000)
    log_lik, log_prior, log_r = synthetic_terms(z)
    weights = torch.exp(log_lik + log_prior - log_r)
    grid = torch.linspace(-8, 8, 16_001, dtype=torch.float64)[:, None]
    grid_lik, grid_prior, _ = synthetic_terms(grid)
    evidence = (torch.exp(grid_lik + grid_prior)).sum() * (grid[1, 0] - grid[0, 0])
    assert abs(weights.mean() - evidence) < 5 * weights.std() / math.sqrt(len(weights))
