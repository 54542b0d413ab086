"""The checks of notebook 06's exercises accept the right answer and reject typical mistakes.

The right answers are computed here independently of the checks' own references: bits per dimension
with NumPy's log2, the per-dimension KL with NumPy from the Normals' parameters, and exercise 3's rate
and distortion with NumPy from the raw outputs of an untrained 2-d VAE's two networks, on synthetic
binary images.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.distributions import Independent, Normal

from vae_course.exercises import nb06
from vae_course.models import VAE

from _exercise_refs import bernoulli_distortion, encoder_kl

# --- exercise 1: bits per dimension -------------------------------------------------------------------

SYNTHETIC_NLL = torch.tensor([101.5, 95.25, 130.0, 88.75, 112.0])  # nats per image, one per image


def synthetic_bits_per_dimension():
    return float(np.mean(SYNTHETIC_NLL.numpy()) * np.log2(np.e) / 784)


def test_exercise_1_accepts_bits_per_dimension():
    right = synthetic_bits_per_dimension()
    nb06.check_exercise_1(right, SYNTHETIC_NLL)
    nb06.check_exercise_1(torch.tensor(right), SYNTHETIC_NLL)  # a one-element tensor is a fine answer
    nb06.check_exercise_1(np.float32(right), SYNTHETIC_NLL)


@pytest.mark.parametrize("mistake, message", [
    (lambda nats: nats / 784, "nats per pixel"),
    (lambda nats: nats / np.log(2), "bits per image"),
    (lambda nats: nats * np.log(2) / 784, "multiplied by ln 2"),
    (lambda nats: np.log10(np.e) * nats / 784, "base 10"),
    (lambda nats: -nats * np.log2(np.e) / 784, "sign"),
    (lambda nats: 5 * nats * np.log2(np.e) / 784, "mean of nll"),  # summed over the five images
])
def test_exercise_1_rejects_typical_mistakes(mistake, message):
    nats = float(np.mean(SYNTHETIC_NLL.numpy()))
    with pytest.raises(AssertionError, match=message):
        nb06.check_exercise_1(mistake(nats), SYNTHETIC_NLL)


def test_exercise_1_rejects_a_non_number():
    with pytest.raises(AssertionError, match="one number"):
        nb06.check_exercise_1(SYNTHETIC_NLL / 784, SYNTHETIC_NLL)


# --- exercise 2: the KL of each dimension by hand -------------------------------------------------------

@pytest.fixture(scope="module")
def synthetic_posterior():
    """q(z|x) of 50 'images' in 4 dimensions, with means and scales far from 0 and 1."""
    rng = np.random.default_rng(0)
    mu = rng.normal(0.5, 1.5, size=(50, 4))
    sigma = rng.uniform(0.05, 0.9, size=(50, 4))
    return mu, sigma, Independent(Normal(torch.from_numpy(mu).float(), torch.from_numpy(sigma).float()), 1)


def numpy_kl(mu, sigma):
    return 0.5 * (mu**2 + sigma**2 - 1 - np.log(sigma**2))  # (N, d)


def test_exercise_2_accepts_the_closed_form(synthetic_posterior):
    mu, sigma, q = synthetic_posterior
    nb06.check_exercise_2(torch.from_numpy(numpy_kl(mu, sigma).mean(axis=0)), q)
    nb06.check_exercise_2(torch.from_numpy(numpy_kl(mu, sigma).mean(axis=0)).float(), q)


@pytest.mark.parametrize("mistake, message", [
    (lambda mu, s: numpy_kl(mu, s).sum(axis=0), "sum over the images"),
    (lambda mu, s: (0.5 * (mu**2 + s**2 - 1 - np.log(s))).mean(axis=0), "log sigma"),
    (lambda mu, s: (0.5 * (mu**2 + s - 1 - np.log(s**2))).mean(axis=0), "square it"),
    (lambda mu, s: (mu**2 + s**2 - 1 - np.log(s**2)).mean(axis=0), "1/2"),
    (lambda mu, s: -numpy_kl(mu, s).mean(axis=0), "sign"),
    (lambda mu, s: numpy_kl(mu, s).mean(axis=1), "shape"),  # averaged over the dimensions
    (lambda mu, s: numpy_kl(mu, 1 / s).mean(axis=0), "compute"),  # a precision taken for a scale
])
def test_exercise_2_rejects_typical_mistakes(synthetic_posterior, mistake, message):
    mu, sigma, q = synthetic_posterior
    with pytest.raises(AssertionError, match=message):
        nb06.check_exercise_2(torch.from_numpy(mistake(mu, sigma)), q)


# --- exercise 3: beta = 4 between beta = 1 and beta = 8 ---------------------------------------------------

@pytest.fixture(scope="module")
def synthetic_setup():
    """An untrained 2-d VAE, 64 synthetic binary images, and the rate and distortion of that model on
    them computed with NumPy from the networks' raw outputs (many samples for the distortion)."""
    torch.manual_seed(0)
    model = VAE(latent_dim=2).eval()
    with torch.no_grad():  # codes off the origin and narrow, so that the rate is several nats
        model.encoder[1][-1].bias.copy_(torch.tensor([2.0, -1.5, -3.0, -2.0]))  # (mu_1, mu_2, logvar_1, logvar_2)
    generator = torch.Generator().manual_seed(1)
    synthetic_x = (torch.rand(64, 1, 28, 28, generator=generator) < 0.2).float()
    mu, logvar, kl = encoder_kl(model, synthetic_x)
    rate, distortion = kl.sum(axis=1).mean(), bernoulli_distortion(model, synthetic_x, mu, logvar)
    assert rate > 3  # far from 0, so that R, 4 R, -R and R in bits are told apart
    return model, synthetic_x, rate, distortion


def synthetic_answer(model, r, d, **changes):
    answer = {"model": model, "rate": r, "distortion": d, "neg_elbo": r + d}
    answer.update(changes)
    return answer


def bracket(rate, distortion):
    """(smaller beta, larger beta) terms around the synthetic model: more rate and less distortion, and the reverse."""
    return (rate * 1.5, distortion - 5.0), (rate * 0.5, distortion + 5.0)


def test_exercise_3_accepts_the_measured_terms(synthetic_setup):
    model, x, rate, distortion = synthetic_setup
    nb06.check_exercise_3(synthetic_answer(model, rate, distortion), x, *bracket(rate, distortion))
    nb06.check_exercise_3(synthetic_answer(model, torch.tensor(rate), torch.tensor(distortion)), x,
                          *bracket(rate, distortion))


@pytest.mark.parametrize("change, message", [
    (lambda r, d: {"neg_elbo": d + 4 * r}, "training loss"),
    (lambda r, d: {"neg_elbo": d - r}, "sign"),
    (lambda r, d: {"rate": 4 * r, "neg_elbo": d + 4 * r}, "beta \\* R"),
    (lambda r, d: {"rate": 64 * r, "neg_elbo": d + 64 * r}, "summed over the test images"),
    (lambda r, d: {"rate": r / np.log(2), "neg_elbo": d + r / np.log(2)}, "bits"),
    (lambda r, d: {"distortion": 64 * d, "neg_elbo": 64 * d + r}, "summed over the test images"),
    (lambda r, d: {"distortion": 0.5 * d, "neg_elbo": 0.5 * d + r}, "not this model's test distortion"),
])
def test_exercise_3_rejects_typical_mistakes(synthetic_setup, change, message):
    model, x, rate, distortion = synthetic_setup
    with pytest.raises(AssertionError, match=message):
        nb06.check_exercise_3(synthetic_answer(model, rate, distortion, **change(rate, distortion)), x,
                              *bracket(rate, distortion))


def test_exercise_3_rejects_a_model_not_between_the_others(synthetic_setup):
    model, x, rate, distortion = synthetic_setup
    answer = synthetic_answer(model, rate, distortion)
    smaller, larger = bracket(rate, distortion)
    with pytest.raises(AssertionError, match="rate is not between"):  # as if trained with beta = 1 again
        nb06.check_exercise_3(answer, x, (rate, smaller[1]), larger)
    with pytest.raises(AssertionError, match="distortion is not between"):
        nb06.check_exercise_3(answer, x, smaller, (larger[0], distortion - 1.0))


def test_exercise_3_rejects_the_wrong_latent_size(synthetic_setup):
    _, x, rate, distortion = synthetic_setup
    with pytest.raises(AssertionError, match="2-d latent space"):
        nb06.check_exercise_3(synthetic_answer(VAE(latent_dim=20), rate, distortion), x, *bracket(rate, distortion))
