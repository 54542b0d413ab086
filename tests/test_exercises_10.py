"""The checks of notebook 10's exercises accept the right answer and reject typical mistakes.

The right answers are computed here independently of the checks' own references: exercise 1's marginal with
NumPy's ``logaddexp.reduce``, exercise 2's probe accuracy with scikit-learn's ``LogisticRegression`` on the
codes of a CVAE built here (random encoder weights that ignore the label, a decoder bias that draws the
synthetic images' average pixel), so no training is needed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vae_course.exercises import nb10
from vae_course.models import CVAE

# --- exercise 1: the CVAE's own log p(x) ------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic_table():
    """log p(x|y) of 50 'images' under 10 labels, around -100 nats and far apart, and their true labels."""
    rng = np.random.default_rng(0)
    table = rng.normal(-100, 8, size=(50, 10))
    labels = rng.integers(0, 10, size=50)
    return torch.from_numpy(table), torch.from_numpy(labels)


def numpy_marginal(table: np.ndarray) -> np.ndarray:
    return np.logaddexp.reduce(table, axis=1) - np.log(table.shape[1])  # log (1/10) sum_y p(x|y)


def test_exercise_1_accepts_the_log_marginal(synthetic_table):
    table, labels = synthetic_table
    nb10.check_exercise_1(torch.from_numpy(numpy_marginal(table.numpy())), table, labels)
    nb10.check_exercise_1(torch.from_numpy(numpy_marginal(table.numpy())).float(), table.float(), labels)


@pytest.mark.parametrize("mistake, message", [
    (lambda t, y: -numpy_marginal(t), "sign"),
    (lambda t, y: np.logaddexp.reduce(t, axis=1), "p\\(y\\) = 1/10"),
    (lambda t, y: t.mean(axis=1), "averages the log-likelihoods"),
    (lambda t, y: t.max(axis=1), "largest"),
    (lambda t, y: t.max(axis=1) - np.log(10), "largest"),
    (lambda t, y: t[np.arange(len(y)), y], "own label"),
    (lambda t, y: numpy_marginal(t) / np.log(2), "logsumexp"),  # in bits
])
def test_exercise_1_rejects_typical_mistakes(synthetic_table, mistake, message):
    table, labels = synthetic_table
    with pytest.raises(AssertionError, match=message):
        nb10.check_exercise_1(torch.from_numpy(mistake(table.numpy(), labels.numpy())), table, labels)


def test_exercise_1_rejects_the_wrong_shape_and_a_non_tensor(synthetic_table):
    table, labels = synthetic_table
    with pytest.raises(AssertionError, match="shape"):
        nb10.check_exercise_1(table - np.log(10), table, labels)  # not reduced over the labels
    with pytest.raises(AssertionError, match="shape"):
        nb10.check_exercise_1(torch.tensor(numpy_marginal(table.numpy()).mean()), table, labels)
    with pytest.raises(AssertionError, match="tensor"):
        nb10.check_exercise_1(numpy_marginal(table.numpy()).tolist(), table, labels)


# --- exercise 2: a 5-d CVAE and its probe accuracy ------------------------------------------------------------

PIXEL_MEAN = 0.05  # sparse synthetic digits: a decoder drawing this everywhere costs ~156 nats, far below 784 ln 2 / 2


@pytest.fixture(scope="module")
def synthetic_setup():
    """A CVAE(latent_dim=5) whose codes hold the class only through the pixels, clean training images and noisy
    test images of 10 sparse templates, and the probe accuracies (test, train) computed with scikit-learn."""
    linear_model = pytest.importorskip("sklearn.linear_model")
    torch.manual_seed(0)
    model = CVAE(latent_dim=nb10.EXERCISE_2_LATENT_DIM, hidden_dims=(64,)).eval()
    with torch.no_grad():
        model.encoder[0].weight[:, 784:] = 0  # the label's one-hot columns: the code sees only the pixels
        model.decoder[0][-1].bias.fill_(math.log(PIXEL_MEAN / (1 - PIXEL_MEAN)))
        model.decoder[0][-1].weight.mul_(0.01)
    rng = np.random.default_rng(0)
    templates = rng.random((10, 784)) < PIXEL_MEAN

    def images(n, keep, seed):
        labels = np.random.default_rng(seed).integers(0, 10, size=n)
        noise = np.random.default_rng(seed + 1).random((n, 784))
        x = (templates[labels] & (noise < keep)) | (noise > 1 - 0.3 * PIXEL_MEAN * (1 - keep) - 1e-3)
        return torch.from_numpy(x.astype(np.float32)).reshape(n, 1, 28, 28), torch.from_numpy(labels)

    x_train, y_train = images(300, keep=0.95, seed=1)
    x_test, y_test = images(300, keep=0.35, seed=2)
    with torch.no_grad():
        train_codes = model.encode(x_train, y_train).mean.double().numpy()
        test_codes = model.encode(x_test, y_test).mean.double().numpy()
    reference = linear_model.LogisticRegression(C=1 / (300 * 1e-3), tol=1e-10, max_iter=10_000)
    reference.fit(train_codes, y_train.numpy())
    test_share = float((reference.predict(test_codes) == y_test.numpy()).mean())
    train_share = float((reference.predict(train_codes) == y_train.numpy()).mean())
    # Far enough apart that each mistake below is told from the right answer.
    assert abs(test_share - 0.5) > 0.05 and abs(train_share - test_share) > 0.05, (test_share, train_share)
    return model, (x_train, y_train, x_test, y_test), test_share, train_share


def test_exercise_2_accepts_the_test_accuracy(synthetic_setup):
    model, data, test_share, _ = synthetic_setup
    nb10.check_exercise_2((model, test_share), *data)
    nb10.check_exercise_2((model, torch.tensor(test_share)), *data)


@pytest.mark.parametrize("wrong, message", [
    (lambda test, train: 100 * test, "percentage"),
    (lambda test, train: 1 - test, "error rate"),
    (lambda test, train: train, "training codes"),
    (lambda test, train: test / 3, "encode the training and the test images"),
])
def test_exercise_2_rejects_typical_mistakes(synthetic_setup, wrong, message):
    model, data, test_share, train_share = synthetic_setup
    with pytest.raises(AssertionError, match=message):
        nb10.check_exercise_2((model, wrong(test_share, train_share)), *data)


def test_exercise_2_rejects_the_wrong_model(synthetic_setup):
    _, data, test_share, _ = synthetic_setup
    with pytest.raises(AssertionError, match="latent_dim=5"):
        nb10.check_exercise_2((CVAE(latent_dim=2, hidden_dims=(16,)), test_share), *data)
    with pytest.raises(AssertionError, match="train it"):  # a fresh decoder draws every pixel with probability 1/2
        nb10.check_exercise_2((CVAE(latent_dim=5, hidden_dims=(16,)), test_share), *data)
    with pytest.raises(AssertionError, match="pair"):
        nb10.check_exercise_2(test_share, *data)
