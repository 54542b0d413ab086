"""Checks for the exercises of notebook 11 (tighter bounds and the inference gaps).

Each check raises an ``AssertionError`` that names the mistake and the method, never the expected
number, and returns ``None`` for a right answer. The references do not repeat what the exercise asks
the learner to write: the importance-weighted bound is computed in float64 with the largest log weight
factored out by hand (not with ``torch.logsumexp``), the paired standard error from the per-image
differences with NumPy, and the toy's gaps from ``torch.distributions``' closed-form KL to the exact
posterior.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.distributions import Distribution, MultivariateNormal, kl_divergence

from ._common import number

__all__ = ["check_exercise_1", "check_exercise_2", "check_exercise_3"]


def _tensor(answer: object, what: str, shape: tuple[int, ...]) -> torch.Tensor:
    assert isinstance(answer, torch.Tensor), f"{what} should be a tensor"
    assert tuple(answer.shape) == shape, (
        f"{what} should have shape {shape}, one number per image, got {tuple(answer.shape)}: "
        "reduce over the samples (dim=0) only")
    return answer.detach().double().cpu()


def check_exercise_1(answer: torch.Tensor, log_weights: torch.Tensor) -> None:
    r"""Exercise 1: the importance-weighted bound of each image from its :math:`K` log weights
    ``log_weights`` (K, B), :math:`\log w_k = \log p(x, z_k) - \log q(z_k \mid x)`:

    .. math::

        \hat{\mathcal{L}}_K = \log \frac{1}{K} \sum_k w_k
        = m + \log \frac{1}{K} \sum_k e^{\log w_k - m}, \quad m = \max_k \log w_k.
    """
    log_w = log_weights.detach().double().cpu()
    num_samples, batch = log_w.shape
    got = _tensor(answer, "answer_1", (batch,))
    largest = log_w.max(dim=0).values  # (B,)
    expected = largest + (log_w - largest).exp().mean(dim=0).log()  # the max factored out, by hand

    def close(candidate: torch.Tensor) -> bool:
        return torch.allclose(got, candidate, rtol=1e-5, atol=1e-4)

    assert torch.isfinite(got).all(), (
        "some values are -inf or nan: exp(log w) underflows to 0 for log weights of -100 nats and below; "
        "use torch.logsumexp, which factors out the largest log weight first")
    if close(expected):
        return
    if close(log_w.mean(dim=0)):
        raise AssertionError("that is the mean of the log weights, the K-sample ELBO: the bound is the log of "
                             "the mean of the weights, log (1/K) sum_k w_k")
    if close(expected + math.log(num_samples)):
        raise AssertionError("the - log K is missing: the bound takes the log of the MEAN of the weights, not their sum")
    if close(largest):
        raise AssertionError("that is the largest log weight alone: log-sum-exp adds the other weights to it")
    if close(-expected):
        raise AssertionError("wrong sign: the bound is log (1/K) sum_k w_k, a lower bound on log p(x), not its negative")
    raise AssertionError("compute torch.logsumexp(log_w, dim=0) - log K: the log of the mean of the K weights of "
                         "each image")


def check_exercise_2(answer: tuple, nll_first: torch.Tensor, nll_second: torch.Tensor) -> None:
    r"""Exercise 2: the mean difference of two models' per-image NLL estimates on the same images, first
    minus second, and its *paired* standard error,

    .. math::

        \bar d = \frac{1}{n} \sum_i d_i, \quad \mathrm{SE}(\bar d) = \frac{\operatorname{std}(d)}{\sqrt{n}},
        \quad d_i = \mathrm{NLL}_1(x_i) - \mathrm{NLL}_2(x_i).

    ``answer`` = (mean difference, standard error).
    """
    assert isinstance(answer, (tuple, list)) and len(answer) == 2, (
        "answer_2 should be a pair (mean difference, standard error)")
    difference, error = number(answer[0], "the mean difference"), number(answer[1], "the standard error")
    first = torch.as_tensor(nll_first, dtype=torch.float64).cpu().numpy()
    second = torch.as_tensor(nll_second, dtype=torch.float64).cpu().numpy()
    n = len(first)
    d = first - second
    expected_difference = float(np.mean(d))

    def close(value: float, candidate: float, rtol: float = 1e-3) -> bool:
        return abs(value - candidate) <= rtol * abs(candidate) + 1e-9

    if not close(difference, expected_difference):
        if close(difference, -expected_difference):
            raise AssertionError("wrong sign: the difference is the first model's NLL minus the second's")
        raise AssertionError("the mean difference is the mean over the images of NLL_first - NLL_second")
    std = float(np.std(d, ddof=1))
    candidates = [std / math.sqrt(n), float(np.std(d, ddof=0)) / math.sqrt(n)]
    if any(close(error, c, rtol=2e-3) for c in candidates):
        return
    unpaired = math.sqrt(np.var(first, ddof=1) / n + np.var(second, ddof=1) / n)
    if close(error, unpaired, rtol=2e-3) or close(error, math.sqrt(np.var(first) / n + np.var(second) / n), rtol=2e-3):
        raise AssertionError("that treats the two estimates as independent: they are on the SAME images, so take the "
                             "standard error of the per-image differences, std(d) / sqrt(n)")
    if close(error, std, rtol=2e-3):
        raise AssertionError("that is the standard deviation of the differences: the standard error of their mean "
                             "divides it by sqrt(n)")
    if close(error, std / n, rtol=2e-3):
        raise AssertionError("you divided by n: the standard error of a mean divides the standard deviation by sqrt(n)")
    if close(error, std**2 / n, rtol=2e-3):
        raise AssertionError("that is the variance of the mean: take its square root")
    raise AssertionError("the paired standard error is the standard deviation of the per-image differences "
                         "divided by sqrt(n)")


def _full(distribution: Distribution) -> MultivariateNormal:
    """A diagonal or full Gaussian as a MultivariateNormal (for torch's closed-form KL)."""
    if isinstance(distribution, MultivariateNormal):
        return distribution
    return MultivariateNormal(distribution.mean, torch.diag_embed(distribution.variance))


def check_exercise_3(answer: dict, toy: torch.nn.Module, x: torch.Tensor, scale_factor: float = 0.5) -> None:
    r"""Exercise 3: on the linear-Gaussian toy ``toy`` (a diagonal exact posterior), an encoder with the exact
    posterior means and standard deviations ``scale_factor`` times the exact ones, and its inference gaps
    on ``x``, per image. ``answer`` = {"encoder": ..., "approximation": (B,), "amortization": (B,)}.

    The references: the approximation gap is 0 (the exact posterior lies in the family), the amortization
    gap is :math:`\mathrm{KL}(q_\phi \,\|\, p(z \mid x))` in closed form (torch.distributions). Both gaps are
    Monte Carlo estimates, so 0.05 nats is allowed.
    """
    assert isinstance(answer, dict), 'answer_3 should be a dict {"encoder": ..., "approximation": ..., "amortization": ...}'
    missing = {"encoder", "approximation", "amortization"} - set(answer)
    assert not missing, f"answer_3 lacks the key(s) {sorted(missing)}"
    encoder = answer["encoder"]
    assert hasattr(encoder, "encode") and hasattr(encoder, "decode"), "answer_3['encoder'] should be the model with the new encoder"
    batch = x.shape[0]
    approximation = _tensor(answer["approximation"], "answer_3['approximation']", (batch,))
    amortization = _tensor(answer["amortization"], "answer_3['amortization']", (batch,))
    with torch.no_grad():
        q = encoder.encode(x)
        exact = toy.posterior(x)
        assert torch.allclose(q.mean, exact.mean, atol=1e-6) and torch.allclose(
            q.stddev, scale_factor * exact.variance.sqrt(), rtol=1e-5), (
            f"that is not the encoder asked for: the exact posterior's means, and its standard deviations times "
            f"{scale_factor:g} (DistortedEncoder(toy, scale_factor={scale_factor:g}))")
        forward = kl_divergence(_full(q), _full(exact)).double().cpu()  # KL(q_phi || p(z|x)), closed form
        reverse = kl_divergence(_full(exact), _full(q)).double().cpu()
    tolerance = 0.05
    if (approximation - forward).abs().max() < tolerance and (amortization.abs().max() < tolerance):
        raise AssertionError("the two gaps are swapped: the approximation gap is log p(x) - ELBO(q*), the amortization "
                             "gap ELBO(q*) - ELBO(q_phi)")
    if (amortization + forward).abs().max() < tolerance:
        raise AssertionError("wrong sign: the amortization gap ELBO(q*) - ELBO(q_phi) is never negative")
    assert approximation.abs().max() < tolerance, (
        "the approximation gap should vanish here: the exact posterior is diagonal, so q* can match it; "
        "use inference_gaps(..., log_evidence=toy.evidence().log_prob(x)) with enough steps and ELBO samples")
    if (amortization - forward).abs().max() < tolerance:
        return
    if (amortization - reverse).abs().max() < tolerance:
        raise AssertionError("that is KL(p(z|x) || q_phi), the other direction: the ELBO's gap is KL(q_phi || p(z|x))")
    raise AssertionError("the amortization gap is ELBO(q*) - ELBO(q_phi): measure it with inference_gaps on the new "
                         "encoder, with the exact log evidence, enough optimisation steps and ELBO samples")
