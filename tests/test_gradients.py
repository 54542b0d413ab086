"""The gradient estimators of ``vae_course.gradients`` against independent references.

References: closed forms of E_{N(mu, sigma^2)}[f(z)] differentiated by autograd (f(z) = z^2, exp(a z),
and the step function 1[z > 0], whose expectation is the normal CDF), and, sample by sample, the
surrogate losses built from ``torch.distributions.Normal`` (``rsample`` for the pathwise estimator,
``log_prob`` for the score function). Unbiasedness is asserted within 4 standard errors, computed from
the per-sample terms of many independent samples.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal

from vae_course.gradients import GradientEstimate, reparameterized_gradient, score_function_gradient

ESTIMATORS = {"score_function": score_function_gradient, "reparameterized": reparameterized_gradient}
A = 0.7  # the rate in f(z) = exp(A z)


def square(z: torch.Tensor) -> torch.Tensor:
    return z.square()


def exponential(z: torch.Tensor) -> torch.Tensor:
    return torch.exp(A * z)


def step(z: torch.Tensor) -> torch.Tensor:
    return (z > 0).to(z.dtype)


# Closed forms of E_{N(mu, sigma^2)}[f(z)] as functions of (mu, log_sigma).
CLOSED_FORMS = {
    square: lambda mu, log_sigma: mu.square() + torch.exp(2 * log_sigma),  # mu^2 + sigma^2
    exponential: lambda mu, log_sigma: torch.exp(A * mu + A**2 * torch.exp(2 * log_sigma) / 2),
    step: lambda mu, log_sigma: Normal(0.0, 1.0).cdf(mu / torch.exp(log_sigma)),  # P(z > 0) = Phi(mu / sigma)
}


def analytic_gradient(f, mu: torch.Tensor, log_sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """nabla_(mu, log_sigma) of the closed-form expectation, by autograd (no sampling involved)."""
    mu, log_sigma = mu.clone().requires_grad_(True), log_sigma.clone().requires_grad_(True)
    return torch.autograd.grad(CLOSED_FORMS[f](mu, log_sigma).sum(), (mu, log_sigma))


def synthetic_parameters(dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """A (2, 3) batch of Gaussian parameters: six independent problems in one call."""
    mu = torch.tensor([[1.0, -0.5, 0.0], [2.0, 0.3, -1.2]], dtype=dtype)
    log_sigma = torch.tensor([[math.log(0.5), 0.0, -1.0], [math.log(0.5), 0.4, -0.3]], dtype=dtype)
    return mu, log_sigma


def within_standard_errors(estimate: GradientEstimate, reference: tuple[torch.Tensor, torch.Tensor], n: float = 4.0):
    for mean, terms, exact in (
        (estimate.grad_mu, estimate.per_sample_grad_mu, reference[0]),
        (estimate.grad_log_sigma, estimate.per_sample_grad_log_sigma, reference[1]),
    ):
        standard_error = terms.std(dim=0) / math.sqrt(terms.shape[0])
        z_scores = (mean - exact) / standard_error
        assert z_scores.abs().max() < n, f"estimate {mean} vs analytic {exact}: z-scores {z_scores}"


def test_the_closed_form_reference_matches_the_hand_derivatives_for_z_squared():
    mu, log_sigma = synthetic_parameters()
    grad_mu, grad_log_sigma = analytic_gradient(square, mu, log_sigma)
    torch.testing.assert_close(grad_mu, 2 * mu)  # d/dmu (mu^2 + sigma^2)
    torch.testing.assert_close(grad_log_sigma, 2 * torch.exp(2 * log_sigma))  # d/dlog_sigma sigma^2 = 2 sigma^2


@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize("f", [square, exponential], ids=["z_squared", "exp_az"])
def test_estimators_are_unbiased(name, f):
    mu, log_sigma = synthetic_parameters()
    estimate = ESTIMATORS[name](f, mu, log_sigma, 200_000, generator=torch.Generator().manual_seed(1))
    within_standard_errors(estimate, analytic_gradient(f, mu, log_sigma))


def test_score_function_handles_a_non_differentiable_f_and_reparameterization_refuses_it():
    mu, log_sigma = synthetic_parameters()
    estimate = score_function_gradient(step, mu, log_sigma, 200_000, generator=torch.Generator().manual_seed(2))
    within_standard_errors(estimate, analytic_gradient(step, mu, log_sigma))
    with pytest.raises(ValueError, match="score_function_gradient"):
        reparameterized_gradient(step, mu, log_sigma, 10)


@pytest.mark.parametrize("f", [square, exponential], ids=["z_squared", "exp_az"])
def test_a_baseline_keeps_the_score_function_unbiased_and_lowers_its_variance(f):
    mu, log_sigma = synthetic_parameters()
    exact = CLOSED_FORMS[f](mu, log_sigma)  # b = E[f(z)], a constant: the estimator stays unbiased
    plain = score_function_gradient(f, mu, log_sigma, 200_000, generator=torch.Generator().manual_seed(3))
    with_baseline = score_function_gradient(
        f, mu, log_sigma, 200_000, baseline=exact, generator=torch.Generator().manual_seed(3)
    )
    within_standard_errors(with_baseline, analytic_gradient(f, mu, log_sigma))
    assert (with_baseline.per_sample_grad_mu.var(dim=0) < plain.per_sample_grad_mu.var(dim=0)).all()
    assert (with_baseline.per_sample_grad_log_sigma.var(dim=0) < plain.per_sample_grad_log_sigma.var(dim=0)).all()


@pytest.mark.parametrize("f", [square, exponential], ids=["z_squared", "exp_az"])
def test_reparameterization_has_lower_variance_for_smooth_f(f):
    mu, log_sigma = synthetic_parameters()
    score = score_function_gradient(f, mu, log_sigma, 100_000, generator=torch.Generator().manual_seed(4))
    pathwise = reparameterized_gradient(f, mu, log_sigma, 100_000, generator=torch.Generator().manual_seed(5))
    assert (pathwise.per_sample_grad_mu.var(dim=0) < score.per_sample_grad_mu.var(dim=0)).all()
    assert (pathwise.per_sample_grad_log_sigma.var(dim=0) < score.per_sample_grad_log_sigma.var(dim=0)).all()


@pytest.mark.parametrize("name", ESTIMATORS)
def test_variance_of_the_estimate_falls_as_one_over_k(name):
    # 4,000 copies of one problem give 4,000 independent estimates in one call.
    mu = torch.full((4000,), 1.0, dtype=torch.float64)
    log_sigma = torch.full((4000,), math.log(0.5), dtype=torch.float64)
    generator = torch.Generator().manual_seed(6)
    variances = [ESTIMATORS[name](square, mu, log_sigma, k, generator=generator).grad_mu.var() for k in (1, 16)]
    ratio = (variances[0] / variances[1]).item()
    assert 16 / 1.25 < ratio < 16 * 1.25, f"Var(K=1) / Var(K=16) = {ratio:.2f}, expected about 16"


def test_per_sample_terms_match_surrogate_losses_built_with_torch_distributions():
    mu, log_sigma = synthetic_parameters()
    generator = torch.Generator().manual_seed(7)
    for name, estimator in ESTIMATORS.items():
        estimate = estimator(exponential, mu, log_sigma, 5, generator=generator)
        eps = (estimate.z - mu) / log_sigma.exp()  # the noise that produced the samples
        mu_k = mu.expand_as(eps).clone().requires_grad_(True)
        log_sigma_k = log_sigma.expand_as(eps).clone().requires_grad_(True)
        q = Normal(mu_k, log_sigma_k.exp())
        if name == "reparameterized":  # differentiate f through z = mu + sigma * eps
            surrogate = exponential(q.loc + q.scale * eps)
        else:  # f(z) is a constant weight on the log-density: the REINFORCE surrogate
            surrogate = exponential(estimate.z) * q.log_prob(estimate.z)
        expected = torch.autograd.grad(surrogate.sum(), (mu_k, log_sigma_k))
        torch.testing.assert_close(estimate.per_sample_grad_mu, expected[0])
        torch.testing.assert_close(estimate.per_sample_grad_log_sigma, expected[1])
        torch.testing.assert_close(estimate.grad_mu, expected[0].mean(dim=0))


@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shapes_dtypes_and_no_graph(name, dtype):
    mu, log_sigma = synthetic_parameters(dtype)
    mu.requires_grad_(True)
    estimate = ESTIMATORS[name](square, mu, log_sigma, 7)
    assert estimate.grad_mu.shape == estimate.grad_log_sigma.shape == (2, 3)
    assert estimate.per_sample_grad_mu.shape == estimate.z.shape == (7, 2, 3)
    assert all(t.dtype == dtype and not t.requires_grad for t in estimate)
    assert mu.grad is None, "estimating a gradient must not touch the caller's .grad"


def test_a_generator_makes_the_estimate_reproducible():
    mu, log_sigma = synthetic_parameters()
    first = reparameterized_gradient(square, mu, log_sigma, 3, generator=torch.Generator().manual_seed(8))
    second = reparameterized_gradient(square, mu, log_sigma, 3, generator=torch.Generator().manual_seed(8))
    assert torch.equal(first.grad_mu, second.grad_mu)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_bad_arguments_are_refused(name):
    mu, log_sigma = synthetic_parameters()
    with pytest.raises(ValueError, match="num_samples"):
        ESTIMATORS[name](square, mu, log_sigma, 0)
    with pytest.raises(ValueError, match="entry by entry"):
        ESTIMATORS[name](lambda z: z.sum(dim=-1), mu, log_sigma, 4)
    with pytest.raises(ValueError, match="floating-point"):
        ESTIMATORS[name](square, torch.tensor([1]), torch.tensor([0]), 4)
    with pytest.raises(ValueError, match="share dtype"):
        ESTIMATORS[name](square, mu.float(), log_sigma, 4)


def test_gradient_snr_matches_the_closed_form_for_a_linear_objective():
    """objective = sum_i theta_i * (1 + eps_i), eps ~ N(0, 1): the gradient is 1 + eps_i, whose mean is 1 and
    standard deviation 1, so SNR = 1 for every entry; an entry with a noise-free gradient of 3 has SNR = inf."""
    from vae_course.gradients import gradient_snr

    torch.manual_seed(0)
    theta = torch.zeros(50, requires_grad=True)
    exact = torch.zeros(1, requires_grad=True)
    snr = gradient_snr(lambda: (theta * (1 + torch.randn(50))).sum() + 3 * exact.sum(), [theta, exact], 4000)
    assert snr.shape == (51,)
    assert torch.allclose(snr[:50], torch.ones(50), atol=0.1)  # 4,000 repeats: error of the SNR ~ 0.02
    assert torch.isinf(snr[50])
    with pytest.raises(ValueError, match="num_repeats must be an integer >= 2"):
        gradient_snr(lambda: theta.sum(), [theta], 1)
