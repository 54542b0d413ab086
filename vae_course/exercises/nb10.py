"""Checks for the exercises of notebook 10 (the conditional VAE).

Each check raises an ``AssertionError`` that names the mistake and the method, never the expected
number, and returns ``None`` for a right answer. The references do not repeat what the exercise asks
the learner to write: exercise 1's marginal is summed with NumPy in float64 after subtracting each
image's largest term, and exercise 2's probe accuracy is measured afresh on the model's own codes.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..probes import accuracy, fit_linear_probe
from ._common import number

__all__ = ["check_exercise_1", "check_exercise_2", "EXERCISE_2_LATENT_DIM"]

EXERCISE_2_LATENT_DIM = 5  # between notebook 10's 2-d and 20-d CVAEs
# A trained model's test -ELBO lies far below that of a decoder that draws every pixel with probability 1/2.
UNTRAINED_NATS = 784 * math.log(2)


def check_exercise_1(answer: torch.Tensor, log_px_given_y: torch.Tensor, labels: torch.Tensor) -> None:
    r"""Exercise 1: the CVAE's own marginal :math:`\log p(x)` of each image from its ten conditionals
    ``log_px_given_y`` (B, 10) and a uniform label prior,

    .. math::

        \log p(x) = \log \sum_{y=0}^{9} p(x \mid y)\, p(y) = \log \frac{1}{10} \sum_{y} e^{\log p(x \mid y)},

    one number per image, shape (B,). ``labels`` (B,) are the images' true digits (to recognise one mistake).
    """
    assert isinstance(answer, torch.Tensor), "answer_1 should be a tensor, one log p(x) per image"
    table = log_px_given_y.detach().double().cpu().numpy()  # (B, 10)
    got = answer.detach().double().cpu()
    assert got.shape == (table.shape[0],), (
        f"answer_1 should have shape ({table.shape[0]},), one log p(x) per image, got {tuple(got.shape)}: "
        "combine the ten labels of each image (dim=-1), not the images")
    got = got.numpy()
    largest = table.max(axis=1, keepdims=True)
    expected = largest[:, 0] + np.log(np.exp(table - largest).mean(axis=1))  # log of the average likelihood

    def close(candidate: np.ndarray) -> bool:
        return np.allclose(got, candidate, rtol=0, atol=1e-3)

    if close(expected):
        return
    if close(-expected):
        raise AssertionError("wrong sign: log p(x) of a binary image is negative; that is the NLL -log p(x)")
    if close(expected + math.log(table.shape[1])):
        raise AssertionError("that sums p(x|y) over the labels: weight each by p(y) = 1/10 (subtract log 10)")
    if close(table.mean(axis=1)):
        raise AssertionError("that averages the log-likelihoods log p(x|y): average the likelihoods p(x|y) "
                             "and then take the log (torch.logsumexp), the log of a sum is not a sum of logs")
    if close(largest[:, 0]) or close(largest[:, 0] - math.log(table.shape[1])):
        raise AssertionError("that keeps only the largest p(x|y): p(x) sums over every label, use torch.logsumexp")
    true_label = table[np.arange(table.shape[0]), labels.cpu().numpy()]
    if close(true_label) or close(true_label - math.log(table.shape[1])):
        raise AssertionError("that is log p(x|y) of each image's own label: p(x) sums over all ten labels")
    raise AssertionError("sum p(x|y) p(y) over the ten labels in log space: "
                         "torch.logsumexp(log_px_given_y, dim=-1) - log 10")


def _codes(model: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.encode(x, labels.to(x.device)).mean  # (N, latent_dim) posterior means


def check_exercise_2(answer: tuple, x_train: torch.Tensor, train_labels: torch.Tensor, x_test: torch.Tensor,
                     test_labels: torch.Tensor) -> None:
    r"""Exercise 2: a CVAE with a 5-d code, trained as notebook 10's CVAEs, and the test accuracy of a
    linear probe (``probes.fit_linear_probe``, default penalty) trained on its codes :math:`\mu(x, y)` of
    the training images ``x_train`` and scored on those of the test images ``x_test``.

    ``answer`` = (model, accuracy), the accuracy a share in [0, 1]. The reference encodes both sets
    with each image's own label and fits the probe afresh; a probe fitted with another penalty may
    differ by a few test images, so 2 % is allowed.
    """
    assert isinstance(answer, tuple) and len(answer) == 2, "answer_2 should be a pair (cvae_5, probe_accuracy)"
    model, value = answer
    assert hasattr(model, "given") and hasattr(model, "num_classes"), "answer_2[0] should be the trained CVAE"
    assert model.latent_dim == EXERCISE_2_LATENT_DIM, (
        f"this CVAE has a {model.latent_dim}-d code: train CVAE(latent_dim={EXERCISE_2_LATENT_DIM})")
    value = number(value, "answer_2[1], the probe's accuracy,")
    with torch.no_grad():
        posterior = model.encode(x_test, test_labels.to(x_test.device))
        decoded = model.decode(posterior.mean, test_labels.to(x_test.device))
        neg_log_p = -decoded.log_prob(x_test).mean().item()
    assert neg_log_p < 0.5 * UNTRAINED_NATS, (
        "this CVAE draws the test digits no better than chance: train it with fit(..., binarized=True) first")
    train_codes, test_codes = _codes(model, x_train, train_labels), posterior.mean
    probe = fit_linear_probe(train_codes, train_labels.to(train_codes.device), num_classes=model.num_classes)
    expected, _ = accuracy(probe(test_codes).argmax(dim=1), test_labels)
    if abs(value - expected) <= 0.02:
        return
    if abs(value - 100 * expected) <= 2:
        raise AssertionError("that is a percentage: give the accuracy as a share between 0 and 1")
    if abs(value - (1 - expected)) <= 0.02:
        raise AssertionError("that is the error rate: the accuracy is the share of test digits predicted right")
    on_train, _ = accuracy(probe(train_codes).argmax(dim=1), train_labels)
    if abs(value - on_train) <= 0.02:
        raise AssertionError("that is the probe's accuracy on the training codes it was fitted to: "
                             "score it on the test codes")
    raise AssertionError("encode the training and the test images with their own labels, "
                         "model.encode(x, y).mean, fit fit_linear_probe on the training codes and labels, "
                         "and score probe(test_codes).argmax(dim=1) against the test labels")
