"""Checks for the exercises of notebook 06 (the VAE on MNIST).

Each check raises an ``AssertionError`` that names the mistake and the method, never the expected
number, and returns ``None`` for a right answer. The references do not repeat what the exercise asks
the learner to write: the per-dimension KL comes from ``torch.distributions.kl_divergence`` of the
one-dimensional Normals, a model's rate from the closed form written out on the encoder's mean and
standard deviation, and its distortion from many reparameterised samples per image.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Normal, kl_divergence

from .._checks import NUM_PIXELS
from ._common import check_rate_distortion, is_close, number, posterior_kl

__all__ = ["check_exercise_1", "check_exercise_2", "check_exercise_3"]


def check_exercise_1(answer: float, nll: torch.Tensor) -> None:
    r"""Exercise 1: the NLL estimate ``nll`` (nats per image, one value per image) in bits per dimension,

    .. math::

        \text{bits/dim} = \frac{\operatorname{mean}(\text{nll})}{784 \ln 2}.
    """
    value = number(answer, "answer_1")
    nats = torch.as_tensor(nll, dtype=torch.float64).mean().item()  # nats per image
    expected = nats / (NUM_PIXELS * math.log(2))
    if is_close(value, expected):
        return
    if is_close(value, -expected):
        raise AssertionError("wrong sign: the NLL -log p(x) is positive; convert it, not log p(x)")
    if is_close(value, nats / NUM_PIXELS):
        raise AssertionError("that is nats per pixel: convert nats to bits too (divide by ln 2)")
    if is_close(value, nats / math.log(2)):
        raise AssertionError("that is bits per image: divide by the number of pixels (784) too")
    if is_close(value, nats * math.log(2) / NUM_PIXELS):
        raise AssertionError("you multiplied by ln 2: one bit is ln 2 nats, so bits = nats / ln 2")
    if is_close(value, nats / math.log(10) / NUM_PIXELS):
        raise AssertionError("that is in base 10: bits are base-2 logarithms, bits = nats / ln 2")
    raise AssertionError("take the mean of nll over the images (nats per image), divide by ln 2 (bits), "
                         "then by the 784 pixels")


def check_exercise_2(answer: torch.Tensor, posterior: torch.distributions.Distribution) -> None:
    r"""Exercise 2: the KL of each latent dimension, averaged over images, written out by hand:

    .. math::

        \mathrm{KL}_d = \operatorname{mean}_\text{images} \frac{1}{2} \left(\mu_d^2 + \sigma_d^2 - 1 - \log
        \sigma_d^2\right),

    for ``posterior`` = :math:`q(z \mid x)` of a batch of images (an Independent Normal, batch shape (N,)).
    The reference is ``kl_divergence`` of the one-dimensional Normals against :math:`\mathcal{N}(0, 1)`.
    """
    assert isinstance(answer, torch.Tensor), "answer_2 should be a tensor"
    mu = posterior.mean.detach().double().cpu()  # (N, latent_dim)
    sigma = posterior.stddev.detach().double().cpu()
    latent_dim = mu.shape[1]
    got = answer.detach().double().cpu()
    assert got.shape == (latent_dim,), (
        f"answer_2 should have shape ({latent_dim},), one number per latent dimension, got {tuple(got.shape)}: "
        "average over the images (dim=0), not over the dimensions")
    per_image = kl_divergence(Normal(mu, sigma), Normal(torch.zeros_like(mu), torch.ones_like(sigma)))  # (N, d)
    expected = per_image.mean(dim=0)

    def close(candidate: torch.Tensor) -> bool:
        return torch.allclose(got, candidate, rtol=1e-4, atol=1e-6)

    if close(expected):
        return
    if close(per_image.sum(dim=0)):
        raise AssertionError("that is the sum over the images: average over them (mean(dim=0))")
    if close(-expected):
        raise AssertionError("wrong sign: a KL is never negative, 1/2 (mu^2 + sigma^2 - 1 - log sigma^2)")
    if close(2 * expected):
        raise AssertionError("the factor 1/2 is missing")
    if close((0.5 * (mu**2 + sigma**2 - 1 - torch.log(sigma))).mean(dim=0)):
        raise AssertionError("you took log sigma where the formula has log sigma^2, the log of the VARIANCE")
    if close((0.5 * (mu**2 + sigma - 1 - torch.log(sigma**2))).mean(dim=0)):
        raise AssertionError("you used sigma where the formula has sigma^2: q.stddev is sigma, square it")
    raise AssertionError("compute 1/2 (mu^2 + sigma^2 - 1 - log sigma^2) with mu = q.mean, sigma = q.stddev, "
                         "for every image and dimension, then average over the images (dim=0)")


def check_exercise_3(
    answer: dict,
    x: torch.Tensor,
    smaller_beta: tuple[float, float],
    larger_beta: tuple[float, float],
    beta: float = 4.0,
) -> None:
    r"""Exercise 3: a 2-d VAE trained as the ablation's models but on :math:`D + \beta R` (:math:`\beta = 4`),
    and its test rate :math:`R`, distortion :math:`D` and :math:`-\mathrm{ELBO} = D + R` on the binarized test
    images ``x``.

    ``answer`` = {"model": the trained VAE, "rate": R, "distortion": D, "neg_elbo": D + R}, each number a
    mean over the images in nats per image. ``smaller_beta`` and ``larger_beta`` are the (rate, distortion)
    of the ablation's beta = 1 and larger-beta models: the new model must lie between them on both.
    The reference rate is the closed form on the model's own :math:`q(z \mid x)`; the reference distortion averages
    many samples per image and allows five standard errors of a one-sample estimate.
    """
    assert isinstance(answer, dict), 'answer_3 should be a dict {"model": ..., "rate": ..., "distortion": ..., "neg_elbo": ...}'
    missing = {"model", "rate", "distortion", "neg_elbo"} - set(answer)
    assert not missing, f"answer_3 lacks the key(s) {sorted(missing)}"
    model = answer["model"]
    assert hasattr(model, "encode") and hasattr(model, "prior"), "answer_3['model'] should be the trained VAE"
    assert model.latent_dim == 2, (
        f"the ablation's models have a 2-d latent space, this one has {model.latent_dim}: train VAE(latent_dim=2)")
    posterior = posterior_kl(model, x)
    bits = (posterior.rate / math.log(2), "that rate is in bits: keep nats, as the ablation table does")
    rate, distortion = check_rate_distortion("answer_3", answer, x, posterior, beta, "measure it as the ablation does,",
                                             rate_mistakes=[bits])
    (rate_small, distortion_small), (rate_large, distortion_large) = smaller_beta, larger_beta
    assert rate_large < rate < rate_small, (
        "its rate is not between the beta = 1 and the larger-beta models': train it as they were, "
        f"VAE(latent_dim=2) after torch.manual_seed(0), fit(..., epochs=ABLATION_EPOCHS, binarized=True, beta={beta:g})")
    assert distortion_small < distortion < distortion_large, (
        "its distortion is not between the beta = 1 and the larger-beta models': train it as they were, "
        f"VAE(latent_dim=2) after torch.manual_seed(0), fit(..., epochs=ABLATION_EPOCHS, binarized=True, beta={beta:g})")
