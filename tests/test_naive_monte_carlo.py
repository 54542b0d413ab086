"""The naive Monte Carlo estimate of log p(x) (prior as the proposal) and the effective sample size,
against independent references: the exact evidence of a linear-Gaussian model, the unbiasedness of
the mean of p(x|z_k) checked with its standard error, and the ESS formula evaluated directly."""

from __future__ import annotations

import math

import pytest
import torch

from vae_course.models import VAE
from vae_course.objectives import effective_sample_size, log_likelihood, naive_log_likelihood
from vae_course.toy import LinearGaussian


def broad_posterior_model() -> tuple[LinearGaussian, torch.Tensor]:
    """Noise larger than the signal: p(z|x) is nearly as wide as p(z), where naive Monte Carlo works."""
    model = LinearGaussian.random(data_dim=3, latent_dim=2, noise_scale=2.0, seed=0)
    torch.manual_seed(0)
    return model, model.evidence().sample((4,))  # (4, 3) float64 draws from the model itself


def test_naive_estimate_is_close_to_the_exact_evidence_when_the_posterior_is_broad():
    model, x = broad_posterior_model()
    torch.manual_seed(1)
    # Small chunks exercise the running log-sum-exp across many pieces.
    estimate = naive_log_likelihood(model, x, num_samples=40_000, max_batch_elements=4 * 3001)
    torch.testing.assert_close(estimate, model.evidence().log_prob(x), rtol=0, atol=0.05)
    assert not estimate.requires_grad


def test_mean_of_the_likelihoods_is_unbiased_for_p_x():
    """exp(estimate) = 1/K sum_k p(x|z_k) has expectation p(x) for any K, however narrow p(z|x) is."""
    model = LinearGaussian.random(data_dim=3, latent_dim=1, noise_scale=0.5, seed=2)
    torch.manual_seed(0)
    x = model.evidence().sample((3,))
    ratios = torch.stack([naive_log_likelihood(model, x, num_samples=5) for _ in range(2_000)])  # (R, B)
    ratios = (ratios - model.evidence().log_prob(x)).exp()  # p_hat(x) / p(x): mean 1
    standard_error = ratios.std(dim=0) / math.sqrt(len(ratios))
    assert torch.all((ratios.mean(dim=0) - 1.0).abs() < 4 * standard_error)


def test_log_of_the_estimate_is_biased_low_and_spreads_more_than_importance_sampling():
    """Jensen: E[log p_hat] < log p(x). With the exact posterior as q, importance sampling has zero
    spread; the naive estimate of a model with a narrow posterior is far below and scattered."""
    model = LinearGaussian.random(data_dim=8, latent_dim=3, noise_scale=0.3, seed=1)
    torch.manual_seed(0)
    x = model.evidence().sample((3,))
    exact = model.evidence().log_prob(x)
    naive = torch.stack([naive_log_likelihood(model, x, num_samples=100) for _ in range(50)])  # (R, B)
    standard_error = naive.std(dim=0) / math.sqrt(len(naive))
    assert torch.all(naive.mean(dim=0) + 4 * standard_error < exact)
    assert torch.all(naive.std(dim=0) > 0.5)
    importance = torch.stack([log_likelihood(model, x, num_samples=100) for _ in range(5)])
    assert torch.all(importance.std(dim=0) < 1e-8)


def test_naive_estimate_is_per_example_in_nats_for_a_vae(synthetic_images):
    torch.manual_seed(0)
    model = VAE(latent_dim=4, hidden_dims=(32,))
    for num_samples in (1, 7):
        value = naive_log_likelihood(model, synthetic_images, num_samples=num_samples)
        assert value.shape == (len(synthetic_images),) and value.dtype == synthetic_images.dtype
        assert torch.all(torch.isfinite(value)) and torch.all(value < 0)
    # K = 1 is log p(x|z) at a single z ~ p(z): the same draw from the same seed.
    torch.manual_seed(5)
    one = naive_log_likelihood(model, synthetic_images, num_samples=1)
    torch.manual_seed(5)
    z = model.prior.sample((1, 1))  # (1, 1, latent_dim)
    torch.testing.assert_close(one, model.decode(z).log_prob(synthetic_images)[0])


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_num_samples_must_be_a_positive_integer(bad):
    model, x = broad_posterior_model()
    with pytest.raises(ValueError, match="num_samples"):
        naive_log_likelihood(model, x, num_samples=bad)


# --- effective sample size -------------------------------------------------------------------------


def test_effective_sample_size_is_kish_formula():
    weights = torch.tensor([[0.2, 3.0], [1.0, 0.1], [0.5, 0.1], [4.0, 0.1]], dtype=torch.float64)  # (K, B)
    direct = [sum(column) ** 2 / sum(w * w for w in column) for column in weights.T.tolist()]
    torch.testing.assert_close(effective_sample_size(weights.log()), torch.tensor(direct, dtype=torch.float64))
    torch.testing.assert_close(effective_sample_size(weights.T.log(), dim=1), torch.tensor(direct, dtype=torch.float64))


def test_effective_sample_size_ranges_from_one_to_k_and_survives_tiny_weights():
    equal = torch.full((50,), -700.0, dtype=torch.float64)  # exp(-700) is near float64's underflow
    assert abs(effective_sample_size(equal).item() - 50) < 1e-9
    one_dominates = torch.cat([torch.tensor([-500.0]), torch.full((99,), -560.0)])
    assert abs(effective_sample_size(one_dominates).item() - 1.0) < 1e-20 + 1e-9
    log_weights = torch.tensor([0.0, -1.0, -2.0], dtype=torch.float64)
    torch.testing.assert_close(effective_sample_size(log_weights - 1000.0), effective_sample_size(log_weights))
