"""The inference gaps (vae_course.gaps) on the linear-Gaussian toy, whose posterior is known exactly and,
with orthogonal columns of W, lies in the diagonal family: the approximation gap must vanish and the
amortization gap must equal KL(q_phi || p(z|x)) from torch.distributions' closed form."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from vae_course.gaps import DistortedEncoder, inference_gaps, optimize_posterior
from vae_course.models import VAE
from vae_course.objectives import elbo_terms
from vae_course.toy import LinearGaussian
from vae_course.toy.linear_gaussian import analytic_elbo


@pytest.fixture
def toy(diagonal_posterior_toy):
    return diagonal_posterior_toy(5)


def off_encoder(model: LinearGaussian) -> DistortedEncoder:
    """An imperfect amortised encoder: the exact posterior's mean shrunk and shifted, its standard
    deviations 1.5 times too wide."""
    return DistortedEncoder(model, mean_scale=0.8, mean_shift=0.3, scale_factor=1.5)


def diagonal(distribution) -> Independent:
    return Independent(Normal(distribution.mean, distribution.variance.sqrt()), 1)


def test_the_toy_posterior_is_diagonal_so_it_lies_in_the_family(toy):
    model, x = toy
    covariance = model.posterior(x).covariance_matrix
    assert torch.allclose(covariance, torch.diag_embed(covariance.diagonal(dim1=-2, dim2=-1)), atol=1e-12)


def test_optimized_posterior_converges_to_the_exact_one(toy):
    model, x = toy
    torch.manual_seed(0)
    found = optimize_posterior(off_encoder(model), x, steps=300, num_samples=8)
    exact = model.posterior(x)
    assert torch.allclose(found.mean, exact.mean, atol=0.08)
    assert torch.allclose(found.stddev, exact.variance.sqrt(), atol=0.05)
    assert torch.all(kl_divergence(found, diagonal(exact)) < 0.01)  # nats; the encoder's q is 0.5-2.4 off


def test_gaps_on_the_toy_are_zero_and_the_exact_kl(toy):
    model, x = toy
    off = off_encoder(model)
    torch.manual_seed(0)
    gaps = inference_gaps(off, x, log_evidence=model.evidence().log_prob(x), steps=300, num_samples=8,
                          elbo_samples=20000)
    amortization_exact = kl_divergence(off.encode(x), diagonal(model.posterior(x)))  # closed form
    assert torch.all(amortization_exact > 0.5)
    # Standard error of an ELBO estimate from 20,000 samples: well under 0.02 nats here.
    assert torch.all(gaps.approximation.abs() < 0.02)
    assert torch.allclose(gaps.amortization, amortization_exact, atol=0.05)
    assert torch.allclose(gaps.total, gaps.approximation + gaps.amortization)


def test_elbo_terms_of_a_given_q_with_many_samples_match_the_closed_form_elbo(toy):
    model, x = toy
    q = off_encoder(model).encode(x)
    full = torch.distributions.MultivariateNormal(q.mean, torch.diag_embed(q.variance))
    torch.manual_seed(0)
    estimate = elbo_terms(model, x, q, num_samples=40000).elbo
    torch.manual_seed(0)  # the same samples again, for the estimate's standard error
    standard_error = model.decode(q.rsample((40000,))).log_prob(x).std(dim=0) / 40000**0.5
    assert torch.all((estimate - analytic_elbo(model, full, x)).abs() < 4 * standard_error)


def test_optimizing_changes_no_weight_of_the_model(synthetic_images):
    torch.manual_seed(0)
    model = VAE(latent_dim=2, hidden_dims=(8,))
    before = {name: value.clone() for name, value in model.state_dict().items()}
    q = optimize_posterior(model, synthetic_images, steps=5)
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())
    assert all(parameter.grad is None for parameter in model.parameters())
    assert q.batch_shape == (6,) and not q.mean.requires_grad


def test_estimated_evidence_is_used_when_none_is_given(toy):
    model, x = toy
    torch.manual_seed(0)
    gaps = inference_gaps(off_encoder(model), x, steps=200, evidence_samples=5000, elbo_samples=5000)
    assert torch.allclose(gaps.log_evidence, model.evidence().log_prob(x), atol=0.03)


def test_distorted_encoder_is_the_exact_posterior_shrunk_shifted_and_widened(toy):
    model, x = toy
    package = DistortedEncoder(model, mean_scale=0.8, mean_shift=0.3, scale_factor=1.5)
    exact = model.posterior(x)  # the reference: the toy's exact posterior, distorted by hand
    assert torch.allclose(package.encode(x).mean, 0.8 * exact.mean + 0.3)
    assert torch.allclose(package.encode(x).stddev, 1.5 * exact.variance.sqrt())
    assert torch.equal(package.prior.mean, model.prior.mean)
    assert torch.allclose(DistortedEncoder(model).encode(x).mean, model.posterior(x).mean)
    with pytest.raises(ValueError, match="scale_factor"):
        DistortedEncoder(model, scale_factor=0.0)
