"""The checks of notebook 04's exercises accept the right answer and reject the typical mistakes.

Right answers are computed here independently of ``vae_course.exercises.nb04``: the Gaussian KL and
the Gaussian expectations written out with precisions and log-determinants, a Monte Carlo estimate, and a
numerical maximisation of the beta-objective, on small synthetic linear-Gaussian models.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import MultivariateNormal

from vae_course.exercises import nb04
from vae_course.toy.linear_gaussian import LinearGaussian, analytic_elbo

DTYPE = torch.float64
SHIFT = torch.tensor([0.5, -0.5], dtype=DTYPE)


def synthetic_model(seed: int) -> tuple[LinearGaussian, torch.Tensor]:
    """A random linear-Gaussian model, D = 3, d = 2, and one observation drawn from it."""
    model = LinearGaussian.random(data_dim=3, latent_dim=2, noise_scale=0.6, seed=seed)
    generator = torch.Generator().manual_seed(100 + seed)
    z = torch.randn(2, generator=generator, dtype=DTYPE)
    x = model.weight @ z + model.bias + 0.6 * torch.randn(3, generator=generator, dtype=DTYPE)
    return model, x


def notebook_model() -> tuple[LinearGaussian, torch.Tensor]:
    """The model and observation of notebook 04, section 2."""
    weight = torch.tensor([[1.0, 0.9], [0.8, 1.0], [0.6, 0.5]], dtype=DTYPE)
    return LinearGaussian(weight, torch.zeros(3, dtype=DTYPE), noise_scale=0.5), torch.tensor([2.0, 1.5, 1.0], dtype=DTYPE)


MODELS = {"notebook": notebook_model(), "synthetic_0": synthetic_model(0), "synthetic_3": synthetic_model(3)}


def gaussian_posterior(model: LinearGaussian, x: torch.Tensor, noise_variance: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and precision of p(z|x) for p(x|z) = N(Wz + b, noise_variance I), written out:
    Lambda = I + W^T W / s2, m = Lambda^-1 W^T (x - b) / s2."""
    w = model.weight
    precision = torch.eye(w.shape[1], dtype=DTYPE) + w.T @ w / noise_variance
    mean = torch.linalg.solve(precision, w.T @ (x - model.bias) / noise_variance)
    return mean, precision


def kl_written_out(m0, cov0, m1, precision1) -> float:
    """KL(N(m0, cov0) || N(m1, precision1^-1)) = 1/2 [tr(P1 C0) + (m1 - m0)^T P1 (m1 - m0) - d + log det C1 - log det C0]."""
    diff = m1 - m0
    return 0.5 * ((precision1 @ cov0).trace() + diff @ precision1 @ diff - len(m0)
                  - torch.logdet(precision1) - torch.logdet(cov0)).item()


# --- Exercise 1: the gap of the shifted q ---------------------------------------------------------

def synthetic_posterior() -> MultivariateNormal:
    covariance = torch.tensor([[0.5, -0.4], [-0.4, 0.45]], dtype=DTYPE)
    return MultivariateNormal(torch.tensor([1.0, 0.7], dtype=DTYPE), covariance)


@pytest.mark.parametrize("posterior", [synthetic_posterior(), notebook_model()[0].posterior(notebook_model()[1])],
                         ids=["synthetic", "notebook"])
def test_exercise_1_accepts_half_the_squared_mahalanobis_length_of_the_shift(posterior):
    right = 0.5 * (SHIFT @ torch.linalg.solve(posterior.covariance_matrix, SHIFT)).item()
    nb04.check_exercise_1(right, posterior)
    nb04.check_exercise_1(torch.tensor(right), posterior)  # a 0-d tensor is an answer too
    nb04.check_exercise_1(round(right, 4), posterior)  # rounded as printed


@pytest.mark.parametrize("mistake, message", [
    ("sign", "sign"), ("other shift", "(0.5, 0.5)"), ("covariance for precision", "inverse"),
    ("no half", "1/2"), ("bits", "bits")])
def test_exercise_1_rejects_typical_mistakes(mistake, message):
    posterior = synthetic_posterior()
    covariance = posterior.covariance_matrix
    right = 0.5 * (SHIFT @ torch.linalg.solve(covariance, SHIFT)).item()
    other = torch.tensor([0.5, 0.5], dtype=DTYPE)
    wrong = {"sign": -right, "other shift": 0.5 * (other @ torch.linalg.solve(covariance, other)).item(),
             "covariance for precision": 0.5 * (SHIFT @ covariance @ SHIFT).item(), "no half": 2 * right,
             "bits": right / math.log(2)}[mistake]
    with pytest.raises(AssertionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        nb04.check_exercise_1(wrong, posterior)


def test_exercise_1_message_does_not_give_the_answer():
    posterior = synthetic_posterior()
    right = 0.5 * (SHIFT @ torch.linalg.solve(posterior.covariance_matrix, SHIFT)).item()
    with pytest.raises(AssertionError) as error:
        nb04.check_exercise_1(right + 0.3, posterior)
    assert f"{right:.2f}" not in str(error.value) and f"{right:.3f}" not in str(error.value)


# --- Exercise 2: the ELBO of the prior by Monte Carlo ---------------------------------------------

def prior_reconstruction_written_out(model: LinearGaussian, x: torch.Tensor) -> float:
    """E_p(z)[log p(x|z)] = -D/2 log(2 pi s2) - (||x - b||^2 + tr(W W^T)) / (2 s2) for z ~ N(0, I)."""
    s2 = model.noise_scale**2
    return (-0.5 * len(x) * math.log(2 * math.pi * s2)
            - ((x - model.bias).pow(2).sum() + model.weight.pow(2).sum()) / (2 * s2)).item()


@pytest.mark.parametrize("name", MODELS)
def test_exercise_2_accepts_the_expectation_and_a_fresh_estimate(name):
    model, x = MODELS[name]
    nb04.check_exercise_2(prior_reconstruction_written_out(model, x), model, x)
    generator = torch.Generator().manual_seed(7)
    z = torch.randn(nb04.EXERCISE_2_SAMPLES, 2, generator=generator, dtype=DTYPE)
    nb04.check_exercise_2(model.decode(z).log_prob(x).mean(), model, x)


@pytest.mark.parametrize("mistake, message", [
    ("sign", "sign"), ("sum", "summed"), ("bits", "bits"), ("evidence", "log p\\(x\\)"), ("far off", "five standard")])
@pytest.mark.parametrize("name", MODELS)
def test_exercise_2_rejects_typical_mistakes(name, mistake, message):
    model, x = MODELS[name]
    right = prior_reconstruction_written_out(model, x)
    evidence = MultivariateNormal(model.bias, model.weight @ model.weight.T
                                  + model.noise_scale**2 * torch.eye(3, dtype=DTYPE)).log_prob(x).item()
    wrong = {"sign": -right, "sum": nb04.EXERCISE_2_SAMPLES * right, "bits": right / math.log(2),
             "evidence": evidence, "far off": right + 0.3 * abs(right) + 1}[mistake]
    with pytest.raises(AssertionError, match=message):
        nb04.check_exercise_2(wrong, model, x)


# --- Exercise 3: beta = 2 on the toy, and the gap it leaves ---------------------------------------

def beta_gap_written_out(model: LinearGaussian, x: torch.Tensor, beta: float) -> float:
    """KL(q_beta || p(z|x)), q_beta the posterior with noise variance beta s2 (the beta-objective's maximiser)."""
    s2 = model.noise_scale**2
    m_beta, precision_beta = gaussian_posterior(model, x, beta * s2)
    m, precision = gaussian_posterior(model, x, s2)
    return kl_written_out(m_beta, torch.linalg.inv(precision_beta), m, precision)


def beta_gap_by_optimisation(model: LinearGaussian, x: torch.Tensor, beta: float) -> float:
    """Maximise the closed-form beta-objective over (m, L) numerically, then measure log p(x) - ELBO."""
    loc = torch.zeros(2, dtype=DTYPE, requires_grad=True)
    raw = torch.zeros(3, dtype=DTYPE, requires_grad=True)  # log L11, L21, log L22
    prior = MultivariateNormal(torch.zeros(2, dtype=DTYPE), torch.eye(2, dtype=DTYPE))

    def q() -> MultivariateNormal:
        scale_tril = torch.stack([torch.stack([raw[0].exp(), torch.zeros((), dtype=DTYPE)]),
                                  torch.stack([raw[1], raw[2].exp()])])
        return MultivariateNormal(loc, scale_tril=scale_tril)

    optimizer = torch.optim.LBFGS([loc, raw], max_iter=50, tolerance_grad=1e-12, tolerance_change=1e-14)

    def closure():
        optimizer.zero_grad()
        kl = torch.distributions.kl_divergence(q(), prior)
        loss = -(analytic_elbo(model, q(), x) + kl - beta * kl)  # -(reconstruction - beta KL)
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return (model.evidence().log_prob(x) - analytic_elbo(model, q(), x)).item()


@pytest.mark.parametrize("name", MODELS)
def test_exercise_3_accepts_the_gap_of_the_beta_optimum(name):
    model, x = MODELS[name]
    right = beta_gap_written_out(model, x, nb04.EXERCISE_3_BETA)
    assert right == pytest.approx(beta_gap_by_optimisation(model, x, nb04.EXERCISE_3_BETA), rel=1e-6)
    nb04.check_exercise_3(right, model, x)
    nb04.check_exercise_3(1.1 * right, model, x)  # a few hundred noisy gradient steps land near it, not on it


@pytest.mark.parametrize("mistake, message", [
    ("beta = 1", "essentially zero"), ("beta on reconstruction", "1/2"), ("other direction", "other direction"),
    ("rate", "rate"), ("ELBO", "sign")])
@pytest.mark.parametrize("name", MODELS)
def test_exercise_3_rejects_typical_mistakes(name, mistake, message):
    model, x = MODELS[name]
    s2 = model.noise_scale**2
    m_beta, precision_beta = gaussian_posterior(model, x, nb04.EXERCISE_3_BETA * s2)
    m, precision = gaussian_posterior(model, x, s2)
    cov_beta = torch.linalg.inv(precision_beta)
    right = kl_written_out(m_beta, cov_beta, m, precision)
    wrong = {
        "beta = 1": 0.003 * right,
        "beta on reconstruction": beta_gap_written_out(model, x, 1 / nb04.EXERCISE_3_BETA),
        "other direction": kl_written_out(m, torch.linalg.inv(precision), m_beta, precision_beta),
        "rate": kl_written_out(m_beta, cov_beta, torch.zeros(2, dtype=DTYPE), torch.eye(2, dtype=DTYPE)),
        "ELBO": analytic_elbo(model, MultivariateNormal(m_beta, cov_beta), x).item(),
    }[mistake]
    assert abs(wrong - right) > nb04.EXERCISE_3_TOLERANCE * right, "the mistake must be outside the tolerance here"
    with pytest.raises(AssertionError, match=message):
        nb04.check_exercise_3(wrong, model, x)


# --- Exercise 4: beta for colour images -----------------------------------------------------------

def test_exercise_4_accepts_height_times_width_times_channels():
    nb04.check_exercise_4(32 * 32 * 3)
    nb04.check_exercise_4(float(32 * 32 * 3))


@pytest.mark.parametrize("wrong, message", [
    (32 * 32, "three colour values"), (784, "28x28"), (3, "every value"), (3072.5, "whole number"),
    ("3072", "a number"), (True, "a number"), (None, "one number")])
def test_exercise_4_rejects_typical_mistakes(wrong, message):
    with pytest.raises(AssertionError, match=message):
        nb04.check_exercise_4(wrong)
