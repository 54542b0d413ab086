"""The checks of notebook 11's exercises accept the right answer and reject typical mistakes.

The right answers are computed here independently of the checks' references: the importance-weighted
bound with NumPy's ``logaddexp.reduce``, the paired standard error in plain Python, and the toy's
amortization gap from the one-dimensional Gaussian KL written out with NumPy (and, end to end, measured
with ``vae_course.gaps.inference_gaps``).
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
import torch

from vae_course.exercises import nb11
from vae_course.gaps import DistortedEncoder, inference_gaps

# --- exercise 1: the IWAE bound from log weights ---------------------------------------------------------


@pytest.fixture(scope="module")
def log_weights():
    """Log weights of 4 'images' with K = 50: around -120 nats, where exp underflows in float32."""
    generator = torch.Generator().manual_seed(0)
    return -120.0 + 3.0 * torch.randn(50, 4, generator=generator)


def numpy_bound(log_w: torch.Tensor) -> torch.Tensor:
    values = log_w.double().numpy()
    return torch.from_numpy(np.logaddexp.reduce(values, axis=0) - np.log(values.shape[0]))


def test_exercise_1_accepts_the_bound(log_weights):
    nb11.check_exercise_1(numpy_bound(log_weights), log_weights)
    nb11.check_exercise_1(numpy_bound(log_weights).float(), log_weights)


@pytest.mark.parametrize("mistake, message", [
    (lambda w: w.mean(dim=0), "mean of the log weights"),
    (lambda w: torch.logsumexp(w, dim=0), "log K is missing"),
    (lambda w: w.max(dim=0).values, "largest log weight"),
    (lambda w: w.exp().mean(dim=0).log(), "underflows"),
    (lambda w: -numpy_bound(w).float(), "sign"),
    (lambda w: torch.logsumexp(w, dim=1) - math.log(4), "shape"),
    (lambda w: torch.logsumexp(w, dim=0) - math.log(w.shape[0]) + 1.0, "logsumexp"),
])
def test_exercise_1_rejects_typical_mistakes(log_weights, mistake, message):
    with pytest.raises(AssertionError, match=message):
        nb11.check_exercise_1(mistake(log_weights), log_weights)


# --- exercise 2: the paired standard error -----------------------------------------------------------------

FIRST = torch.tensor([101.5, 95.25, 130.0, 88.75, 112.0, 97.0])
SECOND = FIRST - torch.tensor([2.0, 3.5, 1.0, 2.5, 4.0, 3.0])  # the same images, a better model


def paired(first, second):
    d = [a - b for a, b in zip(first.tolist(), second.tolist())]
    return statistics.mean(d), statistics.stdev(d) / math.sqrt(len(d))


def test_exercise_2_accepts_the_paired_error():
    nb11.check_exercise_2(paired(FIRST, SECOND), FIRST, SECOND)
    difference, error = paired(FIRST, SECOND)
    nb11.check_exercise_2((torch.tensor(difference), torch.tensor(error)), FIRST, SECOND)


def unpaired_error():
    return math.sqrt(statistics.variance(FIRST.tolist()) / 6 + statistics.variance(SECOND.tolist()) / 6)


@pytest.mark.parametrize("answer, message", [
    (lambda d, e: (d, unpaired_error()), "independent"),
    (lambda d, e: (d, e * math.sqrt(6)), "standard deviation of the differences"),
    (lambda d, e: (d, e / math.sqrt(6)), "divided by n"),
    (lambda d, e: (d, e**2), "variance of the mean"),
    (lambda d, e: (-d, e), "sign"),
    (lambda d, e: (d + 1.0, e), "mean over the images"),
    (lambda d, e: d, "pair"),
])
def test_exercise_2_rejects_typical_mistakes(answer, message):
    with pytest.raises(AssertionError, match=message):
        nb11.check_exercise_2(answer(*paired(FIRST, SECOND)), FIRST, SECOND)


# --- exercise 3: a too-narrow encoder on the toy -------------------------------------------------------------


@pytest.fixture(scope="module")
def toy(diagonal_posterior_toy):
    return diagonal_posterior_toy(4)


def numpy_kl(toy, x, scale_factor, reverse=False):
    """KL between N(m, (c s)^2) and the exact N(m, s^2), summed over the two latent dimensions, per point: with
    the same mean, each dimension's KL is (r - 1 - log r) / 2 for the variance ratio r = c^2, whatever s is."""
    ratio = scale_factor**2 if not reverse else 1 / scale_factor**2  # variance of the first over the second
    per_point = toy.latent_dim * 0.5 * (ratio - 1 - math.log(ratio))
    return torch.full((x.shape[0],), per_point, dtype=torch.float64)


def test_exercise_3_accepts_the_closed_form_and_the_measured_gaps(toy):
    model, x = toy
    encoder = DistortedEncoder(model, scale_factor=0.5)
    zeros = torch.zeros(x.shape[0], dtype=torch.float64)
    nb11.check_exercise_3({"encoder": encoder, "approximation": zeros, "amortization": numpy_kl(model, x, 0.5)},
                          model, x)
    torch.manual_seed(0)
    gaps = inference_gaps(encoder, x, log_evidence=model.evidence().log_prob(x), steps=300, num_samples=8,
                          elbo_samples=20000)
    nb11.check_exercise_3({"encoder": encoder, "approximation": gaps.approximation,
                           "amortization": gaps.amortization}, model, x)


@pytest.mark.parametrize("change, message", [
    (lambda kl, z: {"amortization": -kl}, "sign"),
    (lambda kl, z: {"approximation": kl, "amortization": z}, "swapped"),
    (lambda kl, z: {"approximation": z + 0.3}, "should vanish"),
    (lambda kl, z: {"amortization": kl * 0.5}, "amortization gap is ELBO"),
    (lambda kl, z: {"amortization": kl[:2]}, "shape"),
])
def test_exercise_3_rejects_typical_mistakes(toy, change, message):
    model, x = toy
    kl, zeros = numpy_kl(model, x, 0.5), torch.zeros(x.shape[0], dtype=torch.float64)
    answer = {"encoder": DistortedEncoder(model, scale_factor=0.5), "approximation": zeros, "amortization": kl}
    answer.update(change(kl, zeros))
    with pytest.raises(AssertionError, match=message):
        nb11.check_exercise_3(answer, model, x)


def test_exercise_3_rejects_the_reverse_kl_and_the_wrong_encoder(toy):
    model, x = toy
    zeros = torch.zeros(x.shape[0], dtype=torch.float64)
    with pytest.raises(AssertionError, match="other direction"):
        nb11.check_exercise_3({"encoder": DistortedEncoder(model, scale_factor=0.5), "approximation": zeros,
                               "amortization": numpy_kl(model, x, 0.5, reverse=True)}, model, x)
    with pytest.raises(AssertionError, match="not the encoder asked for"):
        nb11.check_exercise_3({"encoder": DistortedEncoder(model, scale_factor=2.0), "approximation": zeros,
                               "amortization": numpy_kl(model, x, 2.0)}, model, x)
