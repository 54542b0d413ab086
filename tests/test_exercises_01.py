"""The checks of notebook 01's exercises accept the right answer and reject typical mistakes.

The right answers are computed here independently of the checks' own references: the parameter count
by a closed form, the Gaussian's samples and the hole rate with NumPy, the entropy floor with NumPy's
logarithms and an explicit 0 log 0 = 0.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vae_course.exercises import nb01


def synthetic_count_parameters(latent_dim, hidden_dims):
    """Closed form: a pair of neighbouring sizes (a, b) is a layer a -> b in the encoder and b -> a in the
    decoder, 2ab weights and a + b biases between them."""
    sizes = [784, *hidden_dims, latent_dim]
    return sum(2 * a * b + a + b for a, b in zip(sizes[:-1], sizes[1:]))


def test_exercise_1_accepts_the_closed_form():
    nb01.check_exercise_1(synthetic_count_parameters)


@pytest.mark.parametrize("mistake, message", [
    (lambda d, h: sum(a * b for a, b in zip([784, *h, d], [*h, d])) * 2, "biases"),
    (lambda d, h: sum((a + 1) * b for a, b in zip([784, *h], [*h, d])), "half"),  # the encoder alone
    (lambda d, h: synthetic_count_parameters(d, h) - d, "differs"),  # the code layer's biases forgotten once
    (1068306, "function"),
])
def test_exercise_1_rejects_typical_mistakes(mistake, message):
    with pytest.raises(AssertionError, match=message):
        nb01.check_exercise_1(mistake)


# Synthetic training codes: correlated, off-centre, and with standard deviations far from 1, so that
# N(0, I), a variance used as a scale and a diagonal covariance all land far from the right moments.
SYNTHETIC_MEAN = np.array([3.0, -2.0])
SYNTHETIC_COVARIANCE = np.array([[4.0, 0.6 * 2.0 * 0.5], [0.6 * 2.0 * 0.5, 0.25]])
SYNTHETIC_TAU = 0.08  # about a quarter of the fitted Gaussian's codes lie farther than this


@pytest.fixture(scope="module")
def synthetic_z_train():
    rng = np.random.default_rng(0)
    return torch.from_numpy(rng.multivariate_normal(SYNTHETIC_MEAN, SYNTHETIC_COVARIANCE, size=1000))


def numpy_hole_rate(codes, z_train, tau):
    """Share of codes farther than tau from every training code, with NumPy broadcasting."""
    codes, z_train = np.asarray(codes, dtype=np.float64), np.asarray(z_train, dtype=np.float64)
    distances = np.sqrt(((codes[:, None, :] - z_train[None, :, :]) ** 2).sum(axis=-1)).min(axis=1)
    return float((distances > tau).mean())


def fitted_gaussian_codes(z_train, n=500, seed=1):
    z = z_train.numpy()
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.multivariate_normal(z.mean(axis=0), np.cov(z, rowvar=False), size=n))


def test_exercise_2_accepts_codes_from_the_fitted_gaussian(synthetic_z_train):
    for seed in (1, 2, 3):  # the tolerances hold for more than one draw (seed 0 drew z_train)
        codes = fitted_gaussian_codes(synthetic_z_train, seed=seed)
        rate = numpy_hole_rate(codes, synthetic_z_train, SYNTHETIC_TAU)
        assert 0 < rate < 1  # the synthetic set-up has codes both in holes and near data
        nb01.check_exercise_2((codes, rate), synthetic_z_train, torch.tensor(SYNTHETIC_TAU))
        nb01.check_exercise_2((codes.float(), torch.tensor(rate)), synthetic_z_train.float(), SYNTHETIC_TAU)


def _mistaken_codes(name, z_train, n=500):
    z = z_train.numpy()
    rng = np.random.default_rng(2)
    mean, covariance = z.mean(axis=0), np.cov(z, rowvar=False)
    if name == "standard normal":
        return rng.standard_normal((n, 2))
    if name == "variance as scale":
        return mean + rng.standard_normal((n, 2)) @ covariance  # the covariance, not its Cholesky factor
    if name == "diagonal covariance":
        return mean + rng.standard_normal((n, 2)) * np.sqrt(np.diag(covariance))
    if name == "uniform box":
        low, high = z.min(axis=0), z.max(axis=0)
        return low + (high - low) * rng.uniform(size=(n, 2))
    if name == "centred at zero":
        return rng.multivariate_normal(np.zeros(2), covariance, size=n)
    raise ValueError(name)


@pytest.mark.parametrize("name, message", [
    ("standard normal", "N\\(0, I\\)"),
    ("variance as scale", "spread"),
    ("diagonal covariance", "correlation"),
    ("uniform box", "mean|spread"),
    ("centred at zero", "mean"),
])
def test_exercise_2_rejects_codes_from_the_wrong_distribution(synthetic_z_train, name, message):
    codes = torch.from_numpy(_mistaken_codes(name, synthetic_z_train))
    rate = numpy_hole_rate(codes, synthetic_z_train, SYNTHETIC_TAU)  # the right rate for the wrong codes
    with pytest.raises(AssertionError, match=message):
        nb01.check_exercise_2((codes, rate), synthetic_z_train, SYNTHETIC_TAU)


@pytest.mark.parametrize("mistake, message", [
    (lambda rate, codes, z: 100 * rate, "percentage"),
    (lambda rate, codes, z: 1 - rate, "NEAR"),
    # the distance to the mean training code instead of to the nearest one
    (lambda rate, codes, z: float((np.linalg.norm(codes.numpy() - z.numpy().mean(axis=0), axis=1) > SYNTHETIC_TAU).mean()),
     "NEAREST"),
])
def test_exercise_2_rejects_a_wrong_hole_rate(synthetic_z_train, mistake, message):
    codes = fitted_gaussian_codes(synthetic_z_train)
    rate = numpy_hole_rate(codes, synthetic_z_train, SYNTHETIC_TAU)
    with pytest.raises(AssertionError, match=message):
        nb01.check_exercise_2((codes, mistake(rate, codes, synthetic_z_train)), synthetic_z_train, SYNTHETIC_TAU)


@pytest.fixture(scope="module")
def synthetic_grey_images():
    """50 grey 'images' of 784 pixels, with exact 0s and 1s (where 0 log 0 matters) among grey values."""
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(50, 1, 28, 28))
    x[x < 0.4] = 0.0
    x[x > 0.9] = 1.0
    return x


def numpy_floor(x):
    inside = (x > 0) & (x < 1)
    safe = np.where(inside, x, 0.5)
    per_pixel = np.where(inside, -(safe * np.log(safe) + (1 - safe) * np.log(1 - safe)), 0.0)
    return float(per_pixel.reshape(len(x), -1).sum(axis=1).mean())


def test_exercise_3_accepts_the_entropy_floor(synthetic_grey_images):
    floor = numpy_floor(synthetic_grey_images)
    nb01.check_exercise_3(floor, torch.from_numpy(synthetic_grey_images))
    nb01.check_exercise_3(torch.tensor(floor, dtype=torch.float32), torch.from_numpy(synthetic_grey_images).float())


@pytest.mark.parametrize("mistake, message", [
    (lambda floor, x: -floor, "sign"),
    (lambda floor, x: floor / 784, "mean over pixels"),
    (lambda floor, x: floor / math.log(2), "bits"),
    (lambda floor, x: floor * len(x), "sum over images"),
    (lambda floor, x: float("nan"), "0 \\* log\\(0\\)"),
    # x_hat = 1/2 everywhere (the untrained decoder) instead of x_hat = x
    (lambda floor, x: 784 * math.log(2), "for each pixel"),
])
def test_exercise_3_rejects_typical_mistakes(synthetic_grey_images, mistake, message):
    floor = numpy_floor(synthetic_grey_images)
    with pytest.raises(AssertionError, match=message):
        nb01.check_exercise_3(mistake(floor, synthetic_grey_images), torch.from_numpy(synthetic_grey_images))
