"""Checks for the exercises of notebook 01 (the autoencoder).

Each check raises an ``AssertionError`` that names the mistake and the method, never the expected
number, and returns ``None`` for a right answer. The references do not repeat what the exercise asks
the learner to write: the parameter count comes from building the model and counting its tensors, a
fitted Gaussian is judged by the sample moments of the learner's own codes, the hole rate by explicit
squared distances (not ``torch.cdist``), and the entropy floor by ``torch.distributions.Bernoulli``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch.distributions import Bernoulli

from ..models import Autoencoder
from ._common import is_close, number

__all__ = ["check_exercise_1", "check_exercise_2", "check_exercise_3"]

# Architectures on which exercise 1's formula is tried: deep, shallow, narrowing, and no hidden layer.
EXERCISE_1_SIZES = ((2, (512, 256)), (20, (400,)), (8, (64, 32, 16)), (3, ()))


def check_exercise_1(count_parameters: Callable[[int, Sequence[int]], int]) -> None:
    r"""Exercise 1: ``count_parameters(latent_dim, hidden_dims)`` = the number of parameters of
    ``Autoencoder(latent_dim, hidden_dims)``, by formula: the sum over the linear layers
    :math:`n_\text{in} \to n_\text{out}` of the encoder 784 -> hidden_dims -> latent_dim and of the decoder
    (the same sizes reversed) of

    .. math::

        n_\text{in} \, n_\text{out} + n_\text{out}.

    The reference builds each model and adds up the sizes of its parameter tensors.
    """
    assert callable(count_parameters), "answer_1 should be a function of (latent_dim, hidden_dims)"
    for latent_dim, hidden_dims in EXERCISE_1_SIZES:
        model = Autoencoder(latent_dim, hidden_dims)
        expected = sum(p.numel() for p in model.parameters())
        got = count_parameters(latent_dim, hidden_dims)
        where = f"for latent_dim={latent_dim}, hidden_dims={hidden_dims}"
        if got == expected:
            continue
        weights_only = sum(p.numel() for p in model.parameters() if p.dim() == 2)
        encoder_only = sum(p.numel() for p in model.encoder.parameters())
        if got == weights_only:
            raise AssertionError(f"{where} you counted the weight matrices only: each layer also has n_out biases")
        if got == encoder_only or got == expected - encoder_only:
            raise AssertionError(f"{where} you counted one half of the model: count the encoder AND the decoder")
        raise AssertionError(
            f"{where} your count differs from the model's: go through the layers 784 -> hidden_dims -> latent_dim "
            "and back, and add n_in * n_out weights + n_out biases for each")


def _nearest_distances(codes: torch.Tensor, reference: torch.Tensor, chunk: int = 128) -> torch.Tensor:
    """Distance from each code to its nearest reference code, from explicit squared differences (float64)."""
    nearest = []
    for start in range(0, len(codes), chunk):
        differences = codes[start : start + chunk, None, :] - reference[None, :, :]  # (chunk, N, d)
        nearest.append(differences.pow(2).sum(dim=-1).min(dim=1).values.sqrt())  # (chunk,)
    return torch.cat(nearest)


def check_exercise_2(answer: tuple[torch.Tensor, float], z_train: torch.Tensor, tau: float | torch.Tensor) -> None:
    r"""Exercise 2: ``answer = (codes, hole_rate)``, where ``codes`` (n, d) are drawn from the Gaussian
    :math:`\mathcal{N}(m, S)` fitted to the training codes ``z_train`` (:math:`m` their mean, :math:`S` their
    covariance matrix) and ``hole_rate`` is the share of them that lie in a hole: farther than ``tau`` from
    every training code.

    The codes are judged by their sample moments, within five standard errors of :math:`m`, of the standard
    deviations :math:`\sqrt{S_{jj}}` and of the correlations :math:`S_{jk} / \sqrt{S_{jj} S_{kk}}`; the hole rate is
    recomputed
    from the learner's own codes.
    """
    assert isinstance(answer, (tuple, list)) and len(answer) == 2, "answer_2 should be a pair (codes, hole_rate)"
    codes, hole_rate = answer
    reference = torch.as_tensor(z_train).detach().double().cpu()
    codes = torch.as_tensor(codes).detach().double().cpu()
    n, d = len(codes), reference.shape[1]
    assert codes.dim() == 2 and codes.shape[1] == d and n >= 100, (
        f"codes should be a tensor of shape (number of codes, {d}) with at least 100 codes, got {tuple(codes.shape)}")
    assert torch.isfinite(codes).all(), "the codes should be finite numbers"

    mean, std = reference.mean(dim=0), reference.std(dim=0)
    got_mean, got_std = codes.mean(dim=0), codes.std(dim=0)
    if ((got_mean - mean).abs() > 5 * std / math.sqrt(n)).any():
        if (got_mean.abs() < 5 / math.sqrt(n)).all() and ((got_std - 1).abs() < 0.2).all():
            raise AssertionError("your codes look like N(0, I): fit the Gaussian to the training codes "
                                 "(their mean z_train.mean(dim=0) and covariance torch.cov(z_train.T))")
        raise AssertionError("your codes' mean is not the training codes' mean: the Gaussian's mean is "
                             "z_train.mean(dim=0), the average over the training codes")
    std_tolerance = 5 / math.sqrt(2 * n)  # relative standard error of a sample standard deviation, times 5
    if ((got_std / std - 1).abs() > std_tolerance).any():
        if ((got_std / std**2 - 1).abs() < std_tolerance).all():
            raise AssertionError("your codes' spread is the variance, not the standard deviation: pass the "
                                 "covariance as covariance_matrix (or scale N(0, I) noise by its Cholesky factor)")
        if ((got_std / std.sqrt() - 1).abs() < std_tolerance).all():
            raise AssertionError("your codes' variance is the training codes' standard deviation: the "
                                 "covariance matrix holds variances, torch.cov(z_train.T)")
        raise AssertionError("your codes' spread differs from the training codes': draw them from "
                             "MultivariateNormal(mean, covariance_matrix=torch.cov(z_train.T)), not from a box")
    correlation, got_correlation = torch.corrcoef(reference.T), torch.corrcoef(codes.T)
    correlation_tolerance = 5 * (1 - correlation**2) / math.sqrt(n) + 0.02
    assert ((got_correlation - correlation).abs() <= correlation_tolerance).all(), (
        "your codes' correlation differs from the training codes': use the full covariance matrix "
        "torch.cov(z_train.T), not only the variances")

    rate = number(hole_rate, "hole_rate")
    expected = (_nearest_distances(codes, reference) > float(tau)).double().mean().item()
    if abs(rate - expected) <= 0.5 / n:
        return
    if abs(rate - 100 * expected) <= 50 / n and expected > 0:
        raise AssertionError("that is a percentage: give the hole rate as a share between 0 and 1")
    if abs(rate - (1 - expected)) <= 0.5 / n:
        raise AssertionError("that is the share of codes NEAR the data: a code is in a hole when its distance "
                             "to the nearest training code exceeds tau")
    raise AssertionError("your hole rate does not match your codes: for each code take the distance to the "
                         "NEAREST training code (torch.cdist(codes, z_train).min(dim=1)), and count the share "
                         "farther than tau")


def check_exercise_3(answer: float, images: torch.Tensor) -> None:
    r"""Exercise 3: the binary cross-entropy of a perfect reconstruction :math:`\hat x = x`, summed over the
    pixels and averaged over ``images``: the entropy of the pixels read as coin flips,

    .. math::

        \text{floor} = \frac{1}{N} \sum_n \sum_i -\left[x_{ni} \log x_{ni} + (1 - x_{ni}) \log(1 - x_{ni})\right]

    (nats per image, :math:`0 \log 0 = 0`).

    The reference is ``torch.distributions.Bernoulli(probs=x).entropy()`` in float64.
    """
    value = number(answer, "answer_3", finite=False)  # a NaN is a mistake the check names (0 * log 0)
    assert math.isfinite(value), "answer_3 should be a finite number: did a 0 * log(0) give nan? It is 0 (torch.xlogy)"
    x = torch.as_tensor(images).detach().double().cpu()
    num_images, num_pixels = len(x), x[0].numel()
    expected = Bernoulli(probs=x).entropy().reshape(num_images, -1).sum(dim=1).mean().item()
    close = partial(is_close, value)

    if close(expected):
        return
    if close(-expected):
        raise AssertionError("wrong sign: the cross-entropy is MINUS the sum of x log x + (1 - x) log(1 - x)")
    if close(expected / num_pixels):
        raise AssertionError("that is the mean over pixels: the course sums over the pixels, then averages over images")
    if close(expected / math.log(2)):
        raise AssertionError("that is in bits: use natural logarithms (nats)")
    if close(expected * num_images):
        raise AssertionError("that is the sum over images: sum over the pixels, then average over the images")
    raise AssertionError("for each pixel compute -(x log x + (1 - x) log(1 - x)), sum over the pixels of each image, "
                         "then average over the images")
