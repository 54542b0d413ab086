"""The checks of notebook 08's exercises accept the right answer and reject typical mistakes.

The right answers are computed here independently of ``vae_course.exercises.nb08``'s references: the
continuous Bernoulli's mean with NumPy's closed form (the check integrates the density numerically),
bits per dimension with NumPy in nats (the check works in base 2), and exercise 3's rate with NumPy
from the raw output of a small VAE's encoder. Models and images are small synthetic ones, so the file
runs in seconds.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vae_course.exercises import nb08
from vae_course.models import VAE

from _exercise_refs import encoder_kl

# --- exercise 1: the mean of a continuous Bernoulli ---------------------------------------------------

LAM = np.array([0.01, 0.1, 0.25, 0.4, 0.6, 0.75, 0.9, 0.99])


def numpy_mean(lam):
    return lam / (2 * lam - 1) + 1 / (2 * np.arctanh(1 - 2 * lam))


def test_exercise_1_accepts_the_closed_form():
    nb08.check_exercise_1(torch.from_numpy(numpy_mean(LAM)), torch.from_numpy(LAM))
    nb08.check_exercise_1(torch.from_numpy(numpy_mean(LAM)).float(), torch.from_numpy(LAM))  # float32 is fine


def test_exercise_1_reference_agrees_with_torch():
    mean = torch.distributions.ContinuousBernoulli(probs=torch.from_numpy(LAM)).mean
    assert torch.allclose(nb08.continuous_bernoulli_mean_by_integration(torch.from_numpy(LAM)), mean, rtol=1e-8)


@pytest.mark.parametrize("mistake, message", [
    (lambda lam: lam, "NOT its parameter"),
    (lambda lam: 1 - numpy_mean(lam), "mean for 1 - lam"),
    (lambda lam: lam / (2 * lam - 1) - 1 / (2 * np.arctanh(1 - 2 * lam)), "sign of the second term"),
    (lambda lam: lam / (2 * lam - 1) + 1 / np.arctanh(1 - 2 * lam), "factor 2"),
    (lambda lam: lam / (2 * lam - 1), "is missing"),
    (lambda lam: numpy_mean(lam) + 0.05, "elementwise"),
])
def test_exercise_1_rejects_typical_mistakes(mistake, message):
    with pytest.raises(AssertionError, match=message):
        nb08.check_exercise_1(torch.from_numpy(mistake(LAM)), torch.from_numpy(LAM))


def test_exercise_1_rejects_wrong_shapes_and_non_tensors():
    with pytest.raises(AssertionError, match="should be a tensor"):
        nb08.check_exercise_1(numpy_mean(LAM), torch.from_numpy(LAM))
    with pytest.raises(AssertionError, match="one mean per value"):
        nb08.check_exercise_1(torch.from_numpy(numpy_mean(LAM)).mean(), torch.from_numpy(LAM))
    with pytest.raises(AssertionError, match="NaN"):
        nb08.check_exercise_1(torch.full((len(LAM),), float("nan")), torch.from_numpy(LAM))


# --- exercise 2: bits per dimension by hand -----------------------------------------------------------

SYNTHETIC_LOG_P = torch.tensor([1210.5, 980.25, 1402.0, 1105.75])  # nats per dequantized image
D = 784


def numpy_bits(log_p):
    return float(np.mean((D * np.log(256) - log_p) / (D * np.log(2))))


def test_exercise_2_accepts_bits_per_dimension():
    right = numpy_bits(SYNTHETIC_LOG_P.numpy().astype(np.float64))
    nb08.check_exercise_2(right, SYNTHETIC_LOG_P)
    nb08.check_exercise_2(torch.tensor(right), SYNTHETIC_LOG_P)
    nb08.check_exercise_2(np.float32(right), SYNTHETIC_LOG_P)


@pytest.mark.parametrize("mistake, message", [
    (lambda lp: float(np.mean(-lp / (D * np.log(2)))), "D log 256 is missing"),
    (lambda lp: float(np.mean((D * np.log(255) - lp) / (D * np.log(2)))), "not log 255"),
    (lambda lp: float(np.mean((D * np.log(256) - lp) / D)), "nats per dimension"),
    (lambda lp: float(np.mean((D * np.log(256) - lp) / np.log(2))), "bits per image"),
    (lambda lp: -numpy_bits(lp), "wrong sign"),
    (lambda lp: float(np.mean((D * np.log(256) + lp) / (D * np.log(2)))), "sign of log p"),
    (lambda lp: float(np.mean((D * np.log(256) - lp) / (D * np.log(10)))), "average over the images"),
])
def test_exercise_2_rejects_typical_mistakes(mistake, message):
    with pytest.raises(AssertionError, match=message):
        nb08.check_exercise_2(mistake(SYNTHETIC_LOG_P.numpy().astype(np.float64)), SYNTHETIC_LOG_P)


def test_exercise_2_rejects_one_number_per_image():
    per_image = (D * np.log(256) - SYNTHETIC_LOG_P.numpy()) / (D * np.log(2))
    with pytest.raises(AssertionError, match="average over the images"):
        nb08.check_exercise_2(torch.from_numpy(per_image), SYNTHETIC_LOG_P)


# --- exercise 3: the Gaussian with sigma = 1 -----------------------------------------------------------

@pytest.fixture(scope="module")
def synthetic_dark_images():
    """Synthetic (random, not real) images: mostly black, a bright square in the middle, some grey noise."""
    generator = torch.Generator().manual_seed(0)
    images = torch.zeros(64, 1, 28, 28)
    images[:, :, 8:20, 8:20] = 0.8
    return (images + 0.1 * torch.rand(images.shape, generator=generator)).clamp(0, 1)


def as_if_trained(model, images):
    """Set the decoder's output bias to the logit of the mean image: reconstructions near the mean image,
    closer to the images than a grey 0.5 (what one epoch of training gets at the least)."""
    mean_image = images.mean(dim=0).clamp(1e-3, 1 - 1e-3).flatten()
    with torch.no_grad():
        last = model.decoder[0][-1]  # the decoder MLP's last Linear layer
        last.weight.mul_(1e-3)
        last.bias.copy_(torch.logit(mean_image))
    return model


def numpy_rate(model, images):
    return float(encoder_kl(model, images)[2].sum(axis=1).mean())


@pytest.fixture(scope="module")
def sigma_1_model(synthetic_dark_images):
    torch.manual_seed(0)
    return as_if_trained(VAE(likelihood="gaussian", gaussian_scale=1.0), synthetic_dark_images)


def test_exercise_3_accepts_the_sigma_1_model_and_its_rate(sigma_1_model, synthetic_dark_images):
    rate = numpy_rate(sigma_1_model, synthetic_dark_images)
    nb08.check_exercise_3({"model": sigma_1_model, "rate": rate}, synthetic_dark_images, rate_of_small_sigma=rate + 10)
    nb08.check_exercise_3({"model": sigma_1_model, "rate": torch.tensor(rate)}, synthetic_dark_images,
                          rate_of_small_sigma=rate + 10)


@pytest.mark.parametrize("factor, message", [
    (64, "summed over the test images"),
    (1 / np.log(2), "in bits"),
    (2.0, "2 sigma"),
    (0.5, "not this model's test rate"),
])
def test_exercise_3_rejects_a_wrong_rate(sigma_1_model, synthetic_dark_images, factor, message):
    rate = numpy_rate(sigma_1_model, synthetic_dark_images)
    with pytest.raises(AssertionError, match=message):
        nb08.check_exercise_3({"model": sigma_1_model, "rate": factor * rate}, synthetic_dark_images,
                              rate_of_small_sigma=1e6)


@pytest.mark.parametrize("kwargs, message", [
    ({"likelihood": "gaussian"}, "learns its sigma"),
    ({"likelihood": "gaussian", "gaussian_scale": "per_pixel"}, "learns its sigma"),
    ({"likelihood": "gaussian", "gaussian_scale": 0.1}, "not at 1"),
    ({"likelihood": "continuous_bernoulli"}, "likelihood is 'continuous_bernoulli'"),
])
def test_exercise_3_rejects_the_wrong_likelihood(synthetic_dark_images, kwargs, message):
    torch.manual_seed(0)
    model = as_if_trained(VAE(**kwargs), synthetic_dark_images)
    with pytest.raises(AssertionError, match=message):
        nb08.check_exercise_3({"model": model, "rate": numpy_rate(model, synthetic_dark_images)},
                              synthetic_dark_images, rate_of_small_sigma=1e6)


def test_exercise_3_rejects_an_untrained_model(synthetic_dark_images):
    torch.manual_seed(0)
    model = VAE(likelihood="gaussian", gaussian_scale=1.0)  # sigmoid(about 0) = a grey image of about 0.5
    with pytest.raises(AssertionError, match="train it"):
        nb08.check_exercise_3({"model": model, "rate": numpy_rate(model, synthetic_dark_images)},
                              synthetic_dark_images, rate_of_small_sigma=1e6)


def test_exercise_3_rejects_a_rate_above_the_small_sigma_models(sigma_1_model, synthetic_dark_images):
    rate = numpy_rate(sigma_1_model, synthetic_dark_images)
    with pytest.raises(AssertionError, match="larger beta"):
        nb08.check_exercise_3({"model": sigma_1_model, "rate": rate}, synthetic_dark_images,
                              rate_of_small_sigma=rate / 2)


def test_exercise_3_rejects_a_malformed_answer(sigma_1_model):
    with pytest.raises(AssertionError, match="should be a dict"):
        nb08.check_exercise_3(sigma_1_model, torch.zeros(2, 1, 28, 28), rate_of_small_sigma=1.0)
    with pytest.raises(AssertionError, match="lacks the key"):
        nb08.check_exercise_3({"model": sigma_1_model}, torch.zeros(2, 1, 28, 28), rate_of_small_sigma=1.0)
