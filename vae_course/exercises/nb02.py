"""Checks for the exercises of notebook 02 (latent variables and Bayes' rule).

Each ``check_exercise_*`` returns ``None`` for a right answer and raises an ``AssertionError`` whose
message names the mistake and the method, never the expected number. The notebook passes in the
state a check needs (the toy model, the data point); tests/test_exercises_02.py calls every check with
a right answer and with typical mistakes.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Normal

from ..objectives import effective_sample_size
from ..toy import LinearGaussian
from ._common import is_close, number

F64 = torch.float64

# Exercise 1: the linear decoder f(z) = (2z, 1 - z), sigma = 0.5, the point x = (1.0, 0.2) and the grid.
EXERCISE_1_WEIGHT = ((2.0,), (-1.0,))
EXERCISE_1_BIAS = (0.0, 1.0)
EXERCISE_1_NOISE_SCALE = 0.5
EXERCISE_1_X = (1.0, 0.2)
EXERCISE_1_GRID = (-6.0, 6.0, 1201)  # torch.linspace(-6, 6, 1201)

# Exercise 2: points per axis, latent dimension, grid points the decoder evaluates per second.
EXERCISE_2_POINTS_PER_AXIS = 7
EXERCISE_2_LATENT_DIM = 12
EXERCISE_2_RATE = 1e6
SECONDS_PER_DAY = 86_400

# Exercise 3: five naive log-weights log p(x|z_k), in nats.
EXERCISE_3_LOG_WEIGHTS = (-310.2, -325.9, -309.0, -340.1, -311.5)

# Exercise 4: the proposal r(z) = N(loc, scale^2) for point C.
EXERCISE_4_LOC = -2.3
EXERCISE_4_SCALE = 0.5


# A NaN or an infinity in exercises 1 and 3 comes from exponentiating log-terms of a few hundred nats.
IN_LOGS = (": the terms underflowed or overflowed; work in logs (torch.logsumexp) or subtract the largest "
           "log-term before exponentiating")


def check_exercise_1(answer: object) -> None:
    r"""Exercise 1: :math:`\log p(x)` for the linear decoder :math:`f(z) = (2z, 1 - z)`, :math:`\sigma = 0.5`,
    at :math:`x = (1.0, 0.2)`.

    The reference is the closed form of the linear-Gaussian model,
    :math:`p(x) = \mathcal{N}(b, w w^\top + \sigma^2 I)` (``LinearGaussian.evidence``); the grid sum

    .. math::

        \log p(x) \approx \operatorname{logsumexp}_g \left[\log p(x \mid z_g) + \log p(z_g)\right] + \log \Delta z

    agrees with it to far better than the tolerance of 1e-3 nats. Wrong answers recognised: the log of
    the grid spacing left out, the prior left out, one coordinate of x only, the variance passed as
    the scale of ``Normal``, the average over grid points instead of the sum times the spacing, and
    log-terms added instead of combined with log-sum-exp.
    """
    answer = number(answer, "answer_1", finite_hint=IN_LOGS)
    weight = torch.tensor(EXERCISE_1_WEIGHT, dtype=F64)
    bias = torch.tensor(EXERCISE_1_BIAS, dtype=F64)
    x = torch.tensor(EXERCISE_1_X, dtype=F64)
    exact = LinearGaussian(weight, bias, EXERCISE_1_NOISE_SCALE).evidence().log_prob(x).item()
    if abs(answer - exact) < 1e-3:
        return

    grid = torch.linspace(*EXERCISE_1_GRID[:2], EXERCISE_1_GRID[2], dtype=F64)  # (G,)
    mean = grid[:, None] * weight[:, 0] + bias  # (G, 2): f(z_g)
    log_lik = Normal(mean, EXERCISE_1_NOISE_SCALE).log_prob(x)  # (G, 2): per coordinate
    log_lik_variance = Normal(mean, EXERCISE_1_NOISE_SCALE**2).log_prob(x).sum(dim=-1)
    log_prior = Normal(0.0, 1.0).log_prob(grid)  # (G,)
    log_spacing = math.log((grid[1] - grid[0]).item())

    def lse(terms: torch.Tensor) -> float:
        return torch.logsumexp(terms, dim=0).item()

    both = log_lik.sum(dim=-1)
    mistakes = [
        (lse(both + log_prior), "you left out log dz: the grid sum approximates the integral only when each "
                                "term is multiplied by the grid spacing dz, so add log dz"),
        (lse(both) + log_spacing, "you left out the prior: the integrand is p(x|z) p(z), so add log p(z_g)"),
        (lse(log_lik[:, 0] + log_prior) + log_spacing,
         "you used one coordinate of x: log p(x|z) of a 2-d x sums the log-densities of both coordinates"),
        (lse(log_lik_variance + log_prior) + log_spacing,
         "you passed the variance sigma^2 to Normal, whose second argument is the standard deviation sigma"),
        (lse(both + log_prior) - math.log(len(grid)),
         "you averaged over the grid points (divided by G): an integral on a grid is the sum times the spacing dz"),
        ((both + log_prior).sum().item() + log_spacing,
         "you added the log-terms: the integral sums probabilities, so combine their logs with torch.logsumexp"),
    ]
    for wrong, message in mistakes:
        assert not is_close(answer, wrong, rtol=0, atol=1e-3), message
    assert answer < 0, "for this x, p(x) is below 1, so log p(x) is negative: did you forget to take the log?"
    raise AssertionError("not quite: on the grid, log p(x) = logsumexp_g[log p(x|z_g) + log p(z_g)] + log dz, "
                         "with log p(x|z_g) summed over both coordinates of x")


def check_exercise_2(answer: object) -> None:
    r"""Exercise 2: the days one grid evaluation of :math:`p(x)` takes with 7 points per axis, a 12-d latent and
    a decoder that evaluates a million grid points per second.

    A tensor-product grid has :math:`G^d` points (:math:`G` points per axis, a :math:`d`-dimensional latent).
    Wrong answers recognised: the two numbers swapped (:math:`12^7`), their product (:math:`7 \times 12`), Python's
    ``^`` (bitwise XOR, not a power),
    seconds or hours instead of days.
    """
    answer = number(answer, "answer_2")
    n, d, rate = EXERCISE_2_POINTS_PER_AXIS, EXERCISE_2_LATENT_DIM, EXERCISE_2_RATE
    seconds = n**d / rate
    if abs(answer - seconds / SECONDS_PER_DAY) <= 1e-6 * seconds / SECONDS_PER_DAY:
        return
    mistakes = [
        (d**n / rate / SECONDS_PER_DAY, "you swapped the numbers: n points on each of d axes make n ** d points, "
                                        "here points per axis ** latent dimension"),
        (n * d / rate / SECONDS_PER_DAY, "n * d counts the points along d separate axes; the grid holds every "
                                         "combination of one point per axis, n ** d"),
        ((n ^ d) / rate / SECONDS_PER_DAY, "in Python ^ is bitwise XOR, not a power: use **"),
        (seconds, "that is in seconds: divide by the seconds in a day"),
        (seconds / 3600, "that is in hours: divide by 24 more"),
    ]
    for wrong, message in mistakes:  # relative: the values span many orders of magnitude
        assert not is_close(answer, wrong, rtol=1e-6, atol=0), message
    raise AssertionError("not quite: the grid has (points per axis) ** (latent dimension) points; divide by the "
                         "points per second, then by the seconds in a day")


def check_exercise_3(answer: object) -> None:
    r"""Exercise 3: Kish's effective sample size
    :math:`\mathrm{ESS} = \left(\sum_k w_k\right)^2 / \sum_k w_k^2` of five log-weights.

    The reference is ``vae_course.objectives.effective_sample_size``. Wrong answers recognised: the
    log-weights used as if they were the weights, the ratio inverted
    (:math:`\sum_k w_k^2 / \left(\sum_k w_k\right)^2`), and anything outside :math:`[1, K]`.
    """
    answer = number(answer, "answer_3", finite_hint=IN_LOGS)
    log_w = torch.tensor(EXERCISE_3_LOG_WEIGHTS, dtype=F64)
    right = effective_sample_size(log_w).item()
    if abs(answer - right) < 1e-6:
        return
    mistakes = [
        ((log_w.sum() ** 2 / (log_w**2).sum()).item(),
         "you used the log-weights as weights: exponentiate first, w_k = exp(log w_k - max log w)"),
        (1 / right, "the ratio is upside down: ESS = (sum of w)^2 / (sum of w^2)"),
    ]
    for wrong, message in mistakes:
        assert not is_close(answer, wrong, rtol=1e-6, atol=0), message
    assert 1 <= answer <= len(log_w), "an effective sample size lies between 1 and the number of samples K"
    raise AssertionError("not quite: ESS = (sum of w)^2 / (sum of w^2) with w_k = exp(log w_k - max log w)")


def check_exercise_4(answer: object, model: nn.Module, x: torch.Tensor, loc: float = EXERCISE_4_LOC,
                     scale: float = EXERCISE_4_SCALE, min_samples: int = 100) -> None:
    r"""Exercise 4: importance sampling :math:`p(x)` with the proposal
    :math:`r(z) = \mathcal{N}(\text{loc}, \text{scale}^2)` instead of the prior.

    ``answer`` is ``(z, log_w)``: the :math:`K \ge` ``min_samples`` codes drawn from :math:`r`, shape
    (K, 1) or (K,), and their log-weights

    .. math::

        \log w_k = \log p(x \mid z_k) + \log p(z_k) - \log r(z_k),

    shape (K,), for the model's prior and decoder at the data point ``x``. The weights are recomputed at
    the learner's codes; wrong weights recognised: the ratio :math:`p(z) / r(z)` left out, :math:`\log r(z)`
    left out, :math:`\log p(z)` left out, :math:`\log r(z)` added instead of subtracted, and the variance
    passed as the scale of :math:`r`. Then the codes must look drawn from :math:`r`: their mean within 5 standard
    errors of ``loc`` and their standard
    deviation within 30 % of ``scale`` (a sample from the prior fails both).
    """
    assert isinstance(answer, (tuple, list)) and len(answer) == 2, (
        "answer_4 should be a pair (z, log_w): your codes and their log-weights")
    z, log_w = (torch.as_tensor(value, dtype=F64).detach().cpu() for value in answer)
    z, log_w = z.reshape(-1, 1), log_w.reshape(-1)  # (K, 1), (K,)
    assert len(z) >= min_samples, f"draw at least {min_samples} codes: with fewer the check cannot tell r from the prior"
    assert len(log_w) == len(z), "one log-weight per code: log_w should have one entry for each z"
    assert torch.isfinite(log_w).all(), "some log-weights are nan or inf: compute them as sums of log_prob, not logs of exp"

    x = torch.as_tensor(x, dtype=F64).cpu()  # the toy models of notebook 02 compute in float64 on the CPU
    log_lik = model.decode(z).log_prob(x)  # (K,)
    log_prior = model.prior.log_prob(z)  # (K,)
    log_r = Normal(torch.tensor(loc, dtype=F64), scale).log_prob(z[:, 0])  # (K,)
    if not torch.allclose(log_w, log_lik + log_prior - log_r, rtol=1e-6, atol=1e-6):
        mistakes = [
            (log_lik, "these are the naive weights log p(x|z): sampling from r instead of the prior needs the "
                      "correction p(z)/r(z), so add log p(z) and subtract log r(z)"),
            (log_lik + log_prior, "you left out - log r(z): importance weights divide by the density the codes "
                                  "were drawn from"),
            (log_lik - log_r, "you left out log p(z): the target is the joint p(x|z) p(z), so add the prior's log-density"),
            (log_lik + log_prior + log_r, "wrong sign: log r(z) is subtracted, since the weight divides by r(z)"),
            (log_lik + log_prior - Normal(torch.tensor(loc, dtype=F64), scale**2).log_prob(z[:, 0]),
             "you passed the variance to Normal, whose second argument is the standard deviation"),
        ]
        for wrong, message in mistakes:
            assert not torch.allclose(log_w, wrong, rtol=1e-6, atol=1e-6), message
        raise AssertionError("not the importance log-weights: log w = log p(x|z) + log p(z) - log r(z), each the "
                             "log-density at your codes z (model.decode(z).log_prob(x), model.prior.log_prob(z))")
    standard_error = scale / math.sqrt(len(z))
    assert abs(z.mean().item() - loc) < 5 * standard_error, (
        "your codes are not centred on the proposal's mean: draw them from r (r.sample), not from the prior")
    assert 0.7 < z.std().item() / scale < 1.3, (
        "the spread of your codes is not the proposal's: Normal takes the standard deviation, not the variance")
