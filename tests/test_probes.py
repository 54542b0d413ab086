"""The linear probe (vae_course.probes) is multinomial logistic regression: checked against scikit-learn's
LogisticRegression with the same penalty, an independent solver of the same convex problem."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vae_course.probes import accuracy, fit_linear_probe


@pytest.fixture(scope="module")
def synthetic_codes():
    """Three overlapping Gaussian clusters in 4 dimensions: a probe can do well but not perfectly."""
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1.5, size=(3, 4))
    labels = rng.integers(0, 3, size=300)
    codes = centres[labels] + rng.normal(0, 1.0, size=(300, 4))
    return torch.from_numpy(codes), torch.from_numpy(labels)


def test_the_probe_is_scikit_learns_logistic_regression(synthetic_codes):
    linear_model = pytest.importorskip("sklearn.linear_model")
    codes, labels = synthetic_codes
    weight_decay = 0.01
    probe = fit_linear_probe(codes, labels, weight_decay=weight_decay)
    reference = linear_model.LogisticRegression(C=1 / (len(labels) * weight_decay), tol=1e-10, max_iter=10_000)
    reference.fit(codes.numpy(), labels.numpy())
    # Softmax logits are defined up to a shared shift: the penalty fixes the weights' (they sum to 0 over the
    # classes at the optimum); compare the biases after centring both.
    assert np.allclose(probe.weight.numpy(), reference.coef_, atol=1e-4)
    bias = probe.bias.numpy()
    assert np.allclose(bias - bias.mean(), reference.intercept_ - reference.intercept_.mean(), atol=1e-4)
    predicted = probe(codes).argmax(dim=1)
    assert (predicted.numpy() == reference.predict(codes.numpy())).all()


def test_a_stronger_penalty_shrinks_the_weights_and_the_probe_beats_chance(synthetic_codes):
    codes, labels = synthetic_codes
    weak, strong = fit_linear_probe(codes, labels, weight_decay=1e-4), fit_linear_probe(codes, labels, weight_decay=1.0)
    assert strong.weight.norm() < 0.5 * weak.weight.norm()
    share, _ = accuracy(weak(codes).argmax(dim=1), labels)
    assert share > 0.6  # chance is about 1/3


def test_codes_without_information_give_chance_accuracy():
    generator = torch.Generator().manual_seed(0)
    codes, labels = torch.randn(4000, 5, generator=generator), torch.randint(0, 10, (8000,), generator=generator)
    probe = fit_linear_probe(codes, labels[:4000], num_classes=10)
    share, standard_error = accuracy(probe(torch.randn(4000, 5, generator=generator)).argmax(dim=1), labels[4000:])
    assert abs(share - 0.1) < 4 * standard_error


def test_accuracy_and_its_standard_error_by_hand():
    share, standard_error = accuracy(torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 2, 0]))
    assert share == 0.75 and math.isclose(standard_error, math.sqrt(0.75 * 0.25 / 4))
    with pytest.raises(ValueError, match=r"\(N,\)"):
        accuracy(torch.zeros(3), torch.zeros(4))


def test_shapes_are_checked():
    with pytest.raises(ValueError, match=r"codes should be \(N, d\)"):
        fit_linear_probe(torch.zeros(5), torch.zeros(5, dtype=torch.long))
