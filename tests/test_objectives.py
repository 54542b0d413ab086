"""The ELBO family against independent references: torch.distributions, closed forms, Monte Carlo
estimates with their standard errors, and the exact evidence of a linear-Gaussian model."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

from vae_course.models import VAE, Autoencoder, ConvVAE
from vae_course.objectives import (
    elbo,
    elbo_terms,
    gaussian_kl,
    iwae_bound,
    kl_to_prior,
    log_likelihood,
    reconstruction_loss,
)
from vae_course.toy import LinearGaussian

def _cpu_half_matmul() -> bool:
    """torch before 2.2 has no float16 matrix product on the CPU (the oldest version make test-min runs)."""
    try:
        torch.ones(1, 1, dtype=torch.float16) @ torch.ones(1, 1, dtype=torch.float16)
    except RuntimeError:
        return False
    return True


DTYPES = (
    pytest.param(torch.float16, marks=pytest.mark.skipif(not _cpu_half_matmul(), reason="no float16 matmul on the CPU in this torch (added in 2.2)")),
    torch.bfloat16, torch.float32, torch.float64,
)


def synthetic_gaussian_params(batch: int = 5, dim: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic means and log-variances, float64, including large and tiny variances."""
    generator = torch.Generator().manual_seed(seed)
    mu = 2.0 * torch.randn(batch, dim, generator=generator, dtype=torch.float64)
    logvar = 3.0 * torch.randn(batch, dim, generator=generator, dtype=torch.float64)
    return mu, logvar


# --- closed-form KL --------------------------------------------------------------------------------


def test_gaussian_kl_matches_torch_distributions():
    mu, logvar = synthetic_gaussian_params()
    q = Normal(mu, torch.exp(0.5 * logvar))
    p = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    reference = kl_divergence(q, p).sum(dim=-1)
    torch.testing.assert_close(gaussian_kl(mu, logvar), reference, rtol=1e-12, atol=1e-12)


def test_gaussian_kl_matches_monte_carlo_within_its_error_bar():
    mu, logvar = synthetic_gaussian_params(batch=3, dim=2, seed=1)
    logvar = logvar.clamp(-2, 2)  # keep the Monte Carlo variance small enough for 200k samples
    q = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)
    p = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    torch.manual_seed(0)
    z = q.sample((200_000,))
    log_ratio = q.log_prob(z) - p.log_prob(z)  # (N, B): KL = E_q[log q - log p]
    estimate = log_ratio.mean(dim=0)
    standard_error = log_ratio.std(dim=0) / math.sqrt(z.shape[0])
    assert torch.all((gaussian_kl(mu, logvar) - estimate).abs() < 4 * standard_error)


def test_gaussian_kl_is_zero_only_at_the_prior():
    zero = torch.zeros(1, 3)
    assert gaussian_kl(zero, zero).item() == 0.0
    mu, logvar = synthetic_gaussian_params()
    assert torch.all(gaussian_kl(mu, logvar) > 0)


def test_vae_kl_term_is_the_closed_form(synthetic_images):
    torch.manual_seed(0)
    model = VAE(latent_dim=5, hidden_dims=(32,))
    mu, logvar = model.encoder(synthetic_images).chunk(2, dim=-1)
    torch.testing.assert_close(elbo_terms(model, synthetic_images).kl, gaussian_kl(mu, logvar))


def test_kl_falls_back_to_monte_carlo_for_pairs_torch_cannot_do_in_closed_form():
    q = MultivariateNormal(torch.tensor([0.5, -1.0]), torch.tensor([[1.0, 0.3], [0.3, 0.5]]))
    p = Independent(Normal(torch.zeros(2), torch.ones(2)), 1)
    with pytest.raises(NotImplementedError):
        kl_divergence(q, p)
    exact = kl_divergence(q, MultivariateNormal(torch.zeros(2), torch.eye(2)))
    torch.manual_seed(0)
    estimates = kl_to_prior(q, p, z=q.sample((20_000,)))  # one single-sample estimate per z
    assert abs(estimates.mean() - exact) < 4 * estimates.std() / math.sqrt(len(estimates))


# --- the ELBO on a model with exact evidence -------------------------------------------------------


class ShiftedPosterior(nn.Module):
    """A protocol model: the linear-Gaussian decoder and prior, with a diagonal q(z|x) whose mean and
    log-scale are free parameters, one row per data point (so q is *not* the exact posterior)."""

    def __init__(self, model: LinearGaussian, mean: torch.Tensor, log_scale: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.latent_dim = model.latent_dim
        self.mean = nn.Parameter(mean)
        self.log_scale = nn.Parameter(log_scale)

    @property
    def prior(self):
        return self.model.prior

    def encode(self, x):
        return Independent(Normal(self.mean, self.log_scale.exp()), 1)

    def decode(self, z):
        return self.model.decode(z)

    def as_multivariate(self) -> MultivariateNormal:
        return MultivariateNormal(self.mean, torch.diag_embed(self.log_scale.exp() ** 2))


@pytest.fixture
def linear_gaussian() -> tuple[LinearGaussian, torch.Tensor]:
    model = LinearGaussian.random(data_dim=6, latent_dim=3, noise_scale=0.7, seed=0)
    x = model.evidence().sample((4,))  # (4, 6) float64 draws from the model itself
    return model, x


def shifted(model: LinearGaussian, x: torch.Tensor) -> ShiftedPosterior:
    exact = model.posterior(x)
    return ShiftedPosterior(model, exact.mean + 0.4, 0.5 * exact.variance.log() - 0.3)


def test_elbo_equals_log_evidence_when_q_is_the_exact_posterior(linear_gaussian):
    model, x = linear_gaussian
    log_evidence = model.evidence().log_prob(x)
    torch.manual_seed(0)
    # With q = p(z|x), log p(x, z) - log q(z|x) = log p(x) for every z: even one sample is exact.
    torch.testing.assert_close(elbo(model, x, num_samples=1), log_evidence, rtol=0, atol=1e-10)
    torch.testing.assert_close(elbo_terms(model, x).elbo, log_evidence, rtol=0, atol=1e-10)
    torch.testing.assert_close(iwae_bound(model, x, num_samples=7), log_evidence, rtol=0, atol=1e-10)
    torch.testing.assert_close(log_likelihood(model, x, num_samples=50), log_evidence, rtol=0, atol=1e-10)


def test_elbo_is_log_evidence_minus_kl_to_the_true_posterior(linear_gaussian):
    model, x = linear_gaussian
    q_model = shifted(model, x)
    gap = kl_divergence(q_model.as_multivariate(), model.posterior(x))  # KL(q || p(z|x)), exact
    assert torch.all(gap > 0.1)
    torch.manual_seed(0)
    samples = torch.stack([elbo(q_model, x) for _ in range(4000)])  # (S, B) one-sample ELBOs
    estimate, standard_error = samples.mean(0), samples.std(0) / math.sqrt(len(samples))
    expected = model.evidence().log_prob(x) - gap  # log p(x) - KL(q || p(z|x))
    assert torch.all((estimate - expected).abs() < 4 * standard_error)
    assert torch.all(estimate + 4 * standard_error < model.evidence().log_prob(x))  # strictly below


def test_iwae_bound_rises_with_num_samples_towards_the_evidence(linear_gaussian):
    model, x = linear_gaussian
    q_model = shifted(model, x)
    log_evidence = model.evidence().log_prob(x)
    torch.manual_seed(0)
    means, errors = [], []
    for k in (1, 10, 100):
        draws = torch.stack([iwae_bound(q_model, x, num_samples=k) for _ in range(400)])
        means.append(draws.mean(0))
        errors.append(draws.std(0) / math.sqrt(len(draws)))
    for lower, higher, e1, e2 in zip(means, means[1:], errors, errors[1:]):
        assert torch.all(higher - lower > -3 * (e1 + e2)), "L_K must not decrease with K on average"
    assert torch.all(means[-1] - means[0] > 0.05)
    assert torch.all(means[-1] < log_evidence + 3 * errors[-1])


def test_log_likelihood_estimate_is_close_to_the_exact_evidence(linear_gaussian):
    model, x = linear_gaussian
    exact = model.posterior(x)
    # A proposal wider than the posterior: importance weights then have finite variance. (A narrower
    # one, like ``shifted``'s, has heavy-tailed weights and the estimate wanders even at K = 200,000.)
    q_model = ShiftedPosterior(model, exact.mean + 0.4, 0.5 * exact.variance.log() + 0.3)
    torch.manual_seed(0)
    # Small chunks exercise the running log-sum-exp across many pieces.
    estimate = log_likelihood(q_model, x, num_samples=20_000, max_batch_elements=4 * 777)
    torch.testing.assert_close(estimate, model.evidence().log_prob(x), rtol=0, atol=0.05)
    assert not estimate.requires_grad


def test_reparameterised_gradient_matches_the_analytic_gradient(linear_gaussian):
    model, x = linear_gaussian
    q_model = shifted(model, x)
    # Analytic: ELBO(q) = log p(x) - KL(q || p(z|x)) in closed form, differentiated by autograd.
    closed_form = (model.evidence().log_prob(x) - kl_divergence(q_model.as_multivariate(), model.posterior(x))).sum()
    analytic = torch.autograd.grad(closed_form, [q_model.mean, q_model.log_scale])
    torch.manual_seed(0)
    estimate = torch.autograd.grad(elbo(q_model, x, num_samples=200_000).sum(), [q_model.mean, q_model.log_scale])
    for a, e in zip(analytic, estimate):
        torch.testing.assert_close(e, a, rtol=0.02, atol=0.02)


def test_linear_gaussian_posterior_agrees_with_bayes_rule(linear_gaussian):
    """p(z|x) = p(x|z) p(z) / p(x), checked pointwise at a few z."""
    model, x = linear_gaussian
    z = torch.randn(5, 4, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)  # (S, B, d)
    bayes = model.decode(z).log_prob(x) + model.prior.log_prob(z) - model.evidence().log_prob(x)
    torch.testing.assert_close(model.posterior(x).log_prob(z), bayes)


# --- per-example sums, shapes, dtypes, any protocol module -----------------------------------------


@pytest.mark.parametrize("model_class", [VAE, ConvVAE])
def test_objectives_are_per_example_in_nats(model_class, synthetic_images):
    torch.manual_seed(0)
    model = model_class(latent_dim=4)
    for value in (elbo(model, synthetic_images), elbo(model, synthetic_images, num_samples=3),
                  iwae_bound(model, synthetic_images, 5), log_likelihood(model, synthetic_images, 20),
                  elbo_terms(model, synthetic_images).reconstruction, elbo_terms(model, synthetic_images).kl):
        assert value.shape == (len(synthetic_images),)
        assert torch.all(torch.isfinite(value))


def test_reconstruction_term_is_summed_over_pixels_not_averaged(synthetic_images):
    torch.manual_seed(0)
    model = VAE(latent_dim=4, hidden_dims=(32,))
    z = torch.randn(len(synthetic_images), 4)
    logits = model.decoder(z)
    summed_bce = F.binary_cross_entropy_with_logits(logits, synthetic_images, reduction="none").sum(dim=(1, 2, 3))
    torch.testing.assert_close(model.decode(z).log_prob(synthetic_images), -summed_bce)


def test_autoencoder_loss_is_the_bernoulli_negative_log_likelihood():
    torch.manual_seed(0)
    model = Autoencoder(latent_dim=3, hidden_dims=(16,))
    synthetic_binary = torch.bernoulli(torch.full((4, 1, 28, 28), 0.3))
    x_hat = model.reconstruct(synthetic_binary)
    reference = -Independent(torch.distributions.Bernoulli(probs=x_hat), 3).log_prob(synthetic_binary)
    torch.testing.assert_close(reconstruction_loss(model, synthetic_binary), reference, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_objectives_work_in_any_floating_dtype(dtype, synthetic_images):
    torch.manual_seed(0)
    model = VAE(latent_dim=3, hidden_dims=(16,)).to(dtype)
    x = synthetic_images.to(dtype)
    for value in (elbo(model, x), iwae_bound(model, x, 4), log_likelihood(model, x, 8), elbo_terms(model, x).elbo):
        assert value.dtype == dtype
        assert torch.all(torch.isfinite(value))


def test_float64_and_float32_agree():
    model = LinearGaussian.random(data_dim=5, latent_dim=2, seed=3)
    x = model.evidence().sample((3,))
    model32 = LinearGaussian(model.weight.float(), model.bias.float(), model.noise_scale)
    torch.testing.assert_close(elbo(model32, x.float()), elbo(model, x).float(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_num_samples_must_be_a_positive_integer(bad, linear_gaussian):
    model, x = linear_gaussian
    for objective in (elbo, iwae_bound, log_likelihood):
        with pytest.raises(ValueError, match="num_samples"):
            objective(model, x, num_samples=bad)


def test_autoencoder_loss_does_not_saturate_for_a_confidently_wrong_pixel():
    """A black pixel predicted at logit 30 costs softplus(30) = 30.0 nats and keeps its gradient
    sigmoid(30) ~ 1 (binary_cross_entropy on probabilities clamps it at 100 nats with gradient 0)."""
    model = Autoencoder(latent_dim=2, hidden_dims=(8,))
    with torch.no_grad():
        last = model.decoder[0][-1]  # the final Linear layer: its bias sets every logit when weights are 0
        last.weight.zero_()
        last.bias.fill_(30.0)
    black = torch.zeros(1, 1, 28, 28)
    loss = reconstruction_loss(model, black)
    expected = 784 * math.log1p(math.exp(30.0))  # softplus(30), written out
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.sum().backward()
    assert last.bias.grad.min().item() == pytest.approx(1 / (1 + math.exp(-30.0)), rel=1e-6)


# Free bits and bits per dimension (notebooks 09 and 08).

def test_free_bits_rate_is_the_floored_batch_mean_of_each_dimensions_kl():
    from vae_course.objectives import free_bits_rate

    generator = torch.Generator().manual_seed(0)
    mu = torch.randn(8, 5, generator=generator) * torch.tensor([0.05, 0.1, 1.0, 2.0, 0.0])
    logvar = torch.randn(8, 5, generator=generator) * 0.1
    mu.requires_grad_(True)
    q = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)
    p = Independent(Normal(torch.zeros(5), torch.ones(5)), 1)
    floor = 0.5
    rate = free_bits_rate(q, p, floor)
    # The reference, one dimension at a time from the closed form: sum_d max(floor, mean_b KL_bd).
    m = mu.detach()
    per_dimension = [0.5 * (m[:, d] ** 2 + logvar[:, d].exp() - 1 - logvar[:, d]).mean() for d in range(5)]
    expected = sum(max(floor, float(kl)) for kl in per_dimension)
    assert rate.shape == (8,)
    assert float(rate.mean().detach()) == pytest.approx(expected, rel=1e-5)
    rate.mean().backward()
    floored = torch.tensor([float(kl) < floor for kl in per_dimension])
    assert floored.any() and (~floored).any()  # the test covers both cases
    assert torch.all(mu.grad[:, floored] == 0)  # a dimension under the floor gets no gradient
    assert torch.all(mu.grad[:, ~floored].abs().sum(dim=0) > 0)


def test_bits_per_dim_bound_on_a_toy_density_with_known_bin_probabilities():
    """Pixels i.i.d. continuous Bernoulli: P(k) = CDF((k+1)/256) - CDF(k/256) exactly (torch's cdf), against
    the dequantized bound E_u[log p((k + u)/256)] - D log 256, estimated with many draws of u."""
    from torch.distributions import ContinuousBernoulli

    from vae_course.data import dequantize
    from vae_course.objectives import bits_per_dim

    generator = torch.Generator().manual_seed(0)
    density = ContinuousBernoulli(probs=torch.tensor(0.2))
    k = torch.randint(0, 256, (4, 16), generator=generator).double()  # 4 "images" of 16 pixels
    images = k / 255  # as load_dataset stores them
    exact = (density.cdf((k + 1) / 256) - density.cdf(k / 256)).log().sum(dim=1)  # log P(k), (4,)
    exact_bits = -exact / (16 * math.log(2))
    draws = torch.stack([dequantize(images, generator) for _ in range(4000)])  # (4000, 4, 16)
    assert torch.all(torch.floor(draws * 256) == k)  # every draw stays in its own bin
    bound = bits_per_dim(density.log_prob(draws.float()).double().sum(dim=-1), num_dims=16).mean(dim=0)
    assert torch.all(bound >= exact_bits - 1e-4)  # Jensen: an upper bound on the bits
    assert torch.allclose(bound, exact_bits, atol=1e-3)  # and tight for a density this smooth within a bin


def test_bits_per_dim_of_the_uniform_density_is_eight():
    from vae_course.objectives import bits_per_dim

    assert float(bits_per_dim(torch.zeros(1))) == pytest.approx(8.0)  # log p(x) = 0 on [0, 1]^784


def test_iwae_terms_against_the_linear_gaussian_closed_forms(linear_gaussian):
    """The bound approaches the exact evidence as K grows; its reconstruction term is the closed-form
    E_q[log p(x|z)] of the toy, within the Monte Carlo error."""
    from vae_course.objectives import iwae_terms
    from vae_course.toy.linear_gaussian import analytic_elbo, expected_log_likelihood

    model, x = linear_gaussian
    q = shifted(model, x)
    torch.manual_seed(0)
    bound, terms = iwae_terms(q, x, 20000)
    assert torch.allclose(terms.reconstruction, expected_log_likelihood(model, q.as_multivariate(), x), atol=0.1)
    assert torch.allclose(terms.kl, kl_divergence(q.encode(x), model.prior))
    evidence = model.evidence().log_prob(x)
    exact_elbo = analytic_elbo(model, q.as_multivariate(), x)
    # ELBO < L_K <= log p(x), and K = 20,000 samples close most of the gap.
    assert torch.all(exact_elbo < bound) and torch.all(bound <= evidence + 1e-6)
    assert torch.all(evidence - bound < 0.25 * (evidence - exact_elbo))


def test_log_likelihood_with_the_exact_posterior_as_proposal_is_the_evidence(linear_gaussian):
    """With q = p(z|x), every weight p(x, z) / q(z) equals p(x): the estimate is exact whatever K."""
    model, x = linear_gaussian
    torch.manual_seed(0)
    estimate = log_likelihood(model, x, num_samples=3, proposal=model.posterior(x))
    assert torch.allclose(estimate, model.evidence().log_prob(x), atol=1e-9)


def test_elbo_terms_average_the_reconstruction_over_samples(linear_gaussian):
    from vae_course.toy.linear_gaussian import expected_log_likelihood

    model, x = linear_gaussian
    q = shifted(model, x)
    torch.manual_seed(0)
    one = elbo_terms(q, x)
    many = elbo_terms(q, x, num_samples=20000)
    assert one.reconstruction.shape == many.reconstruction.shape == (4,)
    assert torch.allclose(many.reconstruction, expected_log_likelihood(model, q.as_multivariate(), x), atol=0.1)
    assert torch.equal(one.kl, many.kl)  # analytic: the samples do not enter
