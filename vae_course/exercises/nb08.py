"""Checks for the exercises of notebook 08 (likelihoods: what p(x|z) should be, and what its numbers mean).

Each check raises an ``AssertionError`` that names the mistake and the method, never the expected
number, and returns ``None`` for a right answer. The references do not repeat what the exercise asks
the learner to write: the mean of a continuous Bernoulli comes from numerical integration of its density
(torch's ``log_prob``) over a fine grid, bits per dimension from base-2 logarithms of the bin width, and a
retrained model's rate from the closed-form Gaussian KL written out on its encoder's outputs.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import ContinuousBernoulli

from ._common import check_rate, is_close, number, posterior_kl

__all__ = ["check_exercise_1", "check_exercise_2", "check_exercise_3", "continuous_bernoulli_mean_by_integration"]

# Points of the grid on [0, 1] over which exercise 1's reference integrates x p(x).
GRID_POINTS = 200_001


def continuous_bernoulli_mean_by_integration(lam: torch.Tensor) -> torch.Tensor:
    r""":math:`\mathbb{E}[x] = \int_0^1 x \, p(x \mid \lambda) \, dx` for each :math:`\lambda` in ``lam``, by the
    trapezoidal rule over ``GRID_POINTS`` points, with :math:`p` from ``torch.distributions.ContinuousBernoulli``
    (float64)."""
    lam = torch.as_tensor(lam, dtype=torch.float64).reshape(-1, 1)  # (n, 1)
    x = torch.linspace(0, 1, GRID_POINTS, dtype=torch.float64)  # (G,)
    density = ContinuousBernoulli(probs=lam, validate_args=False).log_prob(x).exp()  # (n, G)
    return torch.trapezoid(x * density, x, dim=-1)  # (n,)


def check_exercise_1(answer: torch.Tensor, lam: torch.Tensor) -> None:
    r"""Exercise 1: the mean of the continuous Bernoulli :math:`\mathcal{CB}(\lambda)` for each :math:`\lambda` in
    ``lam`` (none equal to 1/2),

    .. math::

        \mathbb{E}[x] = \frac{\lambda}{2 \lambda - 1} + \frac{1}{2 \operatorname{atanh}(1 - 2 \lambda)}.

    The reference integrates :math:`x \, p(x \mid \lambda)` numerically (``continuous_bernoulli_mean_by_integration``).
    """
    assert isinstance(answer, torch.Tensor), "answer_1 should be a tensor, one mean per value of lam"
    lam = torch.as_tensor(lam, dtype=torch.float64).reshape(-1)
    got = answer.detach().double().cpu().reshape(-1) if answer.numel() == lam.numel() else None
    assert got is not None, (f"answer_1 should hold {lam.numel()} numbers, one mean per value of lam, "
                             f"got {answer.numel()}")
    assert torch.isfinite(got).all(), ("answer_1 holds NaN or inf: compute atanh(1 - 2 lam) (torch.atanh), "
                                       "and use values of lam away from 1/2")
    expected = continuous_bernoulli_mean_by_integration(lam)

    def close(candidate: torch.Tensor) -> bool:
        return torch.allclose(got, candidate, rtol=1e-4, atol=1e-5)

    if close(expected):
        return
    ratio = lam / (2 * lam - 1)
    inverse = 1 / (2 * torch.atanh(1 - 2 * lam))
    if close(lam):
        raise AssertionError("that is lam itself, the parameter: the continuous Bernoulli's mean is NOT its parameter; "
                             "use the formula above")
    if close(1 - expected):
        raise AssertionError("that is the mean for 1 - lam, the mirror image: check which of lam and 1 - lam "
                             "each term uses")
    if close(ratio - inverse):
        raise AssertionError("wrong sign of the second term: it is + 1 / (2 atanh(1 - 2 lam))")
    if close(ratio + 2 * inverse):
        raise AssertionError("the factor 2 in 2 atanh(1 - 2 lam) is missing from the second term's denominator")
    if close(ratio):
        raise AssertionError("the second term, 1 / (2 atanh(1 - 2 lam)), is missing")
    raise AssertionError("compute lam / (2 lam - 1) + 1 / (2 atanh(1 - 2 lam)) for each value of lam "
                         "(torch.atanh), elementwise")


def check_exercise_2(answer: float, log_density: torch.Tensor, num_dims: int = 784, levels: int = 256) -> None:
    r"""Exercise 2: bits per dimension of the 8-bit data, averaged over images, from ``log_density`` =
    :math:`\log p(x)` in nats of each dequantized image :math:`x = (k + u) / 256`,

    .. math::

        \text{bits/dim} = \operatorname{mean}_\text{images} \frac{D \log 256 - \log p(x)}{D \log 2}.

    The reference is written in bits: :math:`\log_2 256 - \log_2 p(x) / D` (each pixel's bin has width
    1/256, so a density :math:`p` gives the bin a probability of about :math:`p / 256` per pixel).
    """
    value = number(answer, "answer_2", hint=": average over the images")
    log_p = torch.as_tensor(log_density, dtype=torch.float64).reshape(-1)  # nats per image
    bits_of_the_bins = math.log2(levels)  # -log2 of one bin's width, per pixel
    expected = (bits_of_the_bins - log_p / math.log(2) / num_dims).mean().item()
    nats = log_p.mean().item()
    if is_close(value, expected):
        return
    if is_close(value, -nats / (num_dims * math.log(2))):
        raise AssertionError("the term D log 256 is missing: a density of x = (k + u) / 256 gives the bin of k a "
                             "probability of about p(x) / 256 per pixel, so add log 256 nats per pixel")
    if is_close(value, (num_dims * math.log(levels - 1) - nats) / (num_dims * math.log(2))):
        raise AssertionError("the bins have width 1/256 (x = (k + u) / 256 with 256 values of k): use log 256, not log 255")
    if is_close(value, (num_dims * math.log(levels) - nats) / num_dims):
        raise AssertionError("that is nats per dimension: convert to bits (divide by ln 2)")
    if is_close(value, (num_dims * math.log(levels) - nats) / math.log(2)):
        raise AssertionError("that is bits per image: divide by the number of pixels D = 784 too")
    if is_close(value, -expected):
        raise AssertionError("wrong sign: bits/dim counts -log P(k), a positive number of bits")
    if is_close(value, (num_dims * math.log(levels) + nats) / (num_dims * math.log(2))):
        raise AssertionError("wrong sign of log p(x): bits/dim = (D log 256 - log p(x)) / (D log 2)")
    raise AssertionError("compute (D log 256 - log p(x)) / (D log 2) for each image, with D = 784 and log p(x) "
                         "in nats, then average over the images")


def check_exercise_3(answer: dict, x: torch.Tensor, rate_of_small_sigma: float, sigma: float = 1.0) -> None:
    r"""Exercise 3: a VAE with a Gaussian likelihood of fixed :math:`\sigma` = ``sigma``, trained as the notebook's
    models, and its test rate :math:`R` (nats per image) on the dequantized test images ``x``.

    ``answer`` = {"model": the trained VAE, "rate": R}. By :math:`-\log p = \lVert x - \mu \rVert^2 / (2 \sigma^2) +`
    const, a larger :math:`\sigma` is a larger weight :math:`\beta = 2 \sigma^2` on the rate of an MSE objective:
    the rate must come out below ``rate_of_small_sigma``, the rate of the notebook's small-:math:`\sigma` model.
    The reference rate is the closed-form KL written out on the model's own :math:`q(z \mid x)`; a model whose
    mean reconstruction is no closer to ``x`` than a grey image of 0.5 was not trained.
    """
    assert isinstance(answer, dict), 'answer_3 should be a dict {"model": ..., "rate": ...}'
    missing = {"model", "rate"} - set(answer)
    assert not missing, f"answer_3 lacks the key(s) {sorted(missing)}"
    model = answer["model"]
    assert hasattr(model, "encode") and hasattr(model, "prior"), "answer_3['model'] should be the trained VAE"
    assert getattr(model, "likelihood", None) == "gaussian", (
        f"the model's likelihood is {getattr(model, 'likelihood', None)!r}: ask for VAE(likelihood='gaussian', ...)")
    scale = model.gaussian_scale
    assert scale not in (None, "per_pixel"), (
        "this model learns its sigma (gaussian_scale=None or 'per_pixel'): fix it, gaussian_scale=1.0")
    assert float(scale) == sigma, f"this model's sigma is fixed at {scale}, not at {sigma:g}: pass gaussian_scale={sigma:g}"
    rate = number(answer["rate"], "answer_3['rate']", hint=": average over the images")
    posterior = posterior_kl(model, x)
    check_rate(rate, posterior, len(x), "measure it as the notebook does, elbo_terms(model, x_test).rate.mean(), "
               "on the dequantized test images x_test", [
                   (posterior.rate / math.log(2), "that rate is in bits: keep nats, as the notebook does"),
                   (2 * sigma**2 * posterior.rate,
                    "that is 2 sigma^2 R, the weighted term of the MSE objective: the rate is the KL itself"),
               ])
    with torch.no_grad():
        error = (model.reconstruct(x) - x).pow(2).mean().item()
    grey = (x - 0.5).pow(2).mean().item()
    assert error < grey, ("the model's reconstructions are no closer to the images than a grey image of 0.5: "
                          "train it, fit(model, train, epochs=NUM_EPOCHS, lr=LR, dequantized=True, progress=False)")
    assert rate < rate_of_small_sigma, (
        "its rate is not below the small-sigma model's: a larger sigma is a larger beta = 2 sigma^2 on the rate, "
        "so train it as the notebook's models were, after torch.manual_seed(0), with the same epochs and lr")
