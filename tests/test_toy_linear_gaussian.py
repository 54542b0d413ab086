"""The closed-form ELBO and the learnable Gaussian q of ``vae_course.toy.linear_gaussian`` against
independent references: Monte Carlo estimates with their standard errors, the exact evidence and
posterior of the linear-Gaussian model, and the known optimum of the mean-field family."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

from vae_course.objectives import elbo, elbo_terms
from vae_course.toy.linear_gaussian import (
    LinearGaussian,
    VariationalGaussian,
    analytic_elbo,
    expected_log_likelihood,
)


@pytest.fixture
def synthetic_model() -> tuple[LinearGaussian, torch.Tensor]:
    """A random linear-Gaussian model (D = 5, d = 3) and three data points drawn from it."""
    model = LinearGaussian.random(data_dim=5, latent_dim=3, noise_scale=0.6, seed=4)
    x = model.evidence().sample((3,))  # (3, 5)
    return model, x


def synthetic_q(latent_dim: int = 3, seed: int = 0, batch: tuple[int, ...] = ()) -> MultivariateNormal:
    """A random full-covariance Gaussian, float64, unrelated to any posterior."""
    generator = torch.Generator().manual_seed(seed)
    loc = torch.randn(*batch, latent_dim, generator=generator, dtype=torch.float64)
    lower = 0.5 * torch.randn(*batch, latent_dim, latent_dim, generator=generator, dtype=torch.float64)
    scale_tril = lower.tril(-1) + torch.diag_embed(0.3 + torch.rand(*batch, latent_dim, generator=generator,
                                                                    dtype=torch.float64))
    return MultivariateNormal(loc, scale_tril=scale_tril)


# --- closed forms ----------------------------------------------------------------------------------


def test_expected_log_likelihood_matches_monte_carlo_within_its_error_bar(synthetic_model):
    model, x = synthetic_model
    q = synthetic_q(batch=(3,))
    torch.manual_seed(0)
    samples = model.decode(q.sample((100_000,))).log_prob(x)  # (N, 3): log p(x|z), z ~ q
    estimate = samples.mean(0)
    standard_error = samples.std(0) / math.sqrt(len(samples))
    exact = expected_log_likelihood(model, q, x)
    assert exact.shape == (3,)
    assert torch.all((exact - estimate).abs() < 4 * standard_error)


def test_analytic_elbo_is_log_evidence_minus_kl_to_the_exact_posterior(synthetic_model):
    model, x = synthetic_model
    q = synthetic_q(batch=(3,), seed=1)
    gap = kl_divergence(q, model.posterior(x))
    torch.testing.assert_close(analytic_elbo(model, q, x), model.evidence().log_prob(x) - gap, rtol=0, atol=1e-10)
    assert torch.all(gap > 0.1), "a random q is far from the posterior: the bound should be loose"


def test_analytic_elbo_of_the_exact_posterior_is_the_log_evidence(synthetic_model):
    model, x = synthetic_model
    torch.testing.assert_close(analytic_elbo(model, model.posterior(x), x), model.evidence().log_prob(x),
                               rtol=0, atol=1e-10)


def test_analytic_elbo_of_the_prior_is_the_expected_log_likelihood_under_the_prior(synthetic_model):
    model, x = synthetic_model
    prior = MultivariateNormal(torch.zeros(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64))
    torch.manual_seed(0)
    samples = model.decode(model.prior.sample((200_000, 1))).log_prob(x)  # (N, 3): z ~ p(z)
    estimate, standard_error = samples.mean(0), samples.std(0) / math.sqrt(len(samples))
    assert torch.all((analytic_elbo(model, prior, x) - estimate).abs() < 4 * standard_error)


def test_analytic_elbo_matches_the_monte_carlo_elbo_of_the_objectives(synthetic_model):
    model, x = synthetic_model
    q = synthetic_q(seed=2)
    q_model = VariationalGaussian(model, q.loc, q.scale_tril)
    torch.manual_seed(0)
    samples = elbo(q_model, x[0].expand(100_000, 5))  # (N,): one-sample ELBOs of the first data point
    estimate, standard_error = samples.mean(), samples.std() / math.sqrt(len(samples))
    assert (analytic_elbo(model, q, x[0]) - estimate).abs() < 4 * standard_error


def test_expected_log_likelihood_refuses_a_non_multivariate_q(synthetic_model):
    model, x = synthetic_model
    q = Independent(Normal(torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)), 1)
    with pytest.raises(TypeError, match="MultivariateNormal"):
        expected_log_likelihood(model, q, x)


# --- the learnable q -------------------------------------------------------------------------------


def test_variational_gaussian_is_the_given_gaussian(synthetic_model):
    model, x = synthetic_model
    q = synthetic_q(seed=3)
    q_model = VariationalGaussian(model, q.loc, q.scale_tril)
    torch.testing.assert_close(q_model.distribution().covariance_matrix, q.covariance_matrix)
    z = q.sample((7,))
    torch.testing.assert_close(q_model.distribution().log_prob(z), q.log_prob(z))
    encoded = q_model.encode(x)  # the same q for each of the 3 rows
    assert encoded.batch_shape == (3,)
    torch.testing.assert_close(encoded.log_prob(z[:, None, :]), q.log_prob(z)[:, None].expand(7, 3))


def test_variational_gaussian_starts_at_the_prior_and_delegates_to_the_model(synthetic_model):
    model, x = synthetic_model
    q_model = VariationalGaussian(model)
    z = torch.randn(6, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    torch.testing.assert_close(q_model.distribution().log_prob(z), model.prior.log_prob(z))
    torch.testing.assert_close(q_model.prior.log_prob(z), model.prior.log_prob(z))
    torch.testing.assert_close(q_model.decode(z).log_prob(x[0]), model.decode(z).log_prob(x[0]))
    assert torch.all(kl_divergence(q_model.distribution(), q_model.prior) == 0)


def test_elbo_terms_of_the_variational_gaussian_use_the_analytic_kl(synthetic_model):
    model, x = synthetic_model
    q = synthetic_q(seed=6)
    q_model = VariationalGaussian(model, q.loc, q.scale_tril)
    reference = Independent(Normal(torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)), 1)
    # KL(q || N(0, I)) by Monte Carlo against the model's own prior: the independent reference.
    torch.manual_seed(0)
    z = q.sample((200_000,))
    log_ratio = q.log_prob(z) - reference.log_prob(z)
    estimate, standard_error = log_ratio.mean(), log_ratio.std() / math.sqrt(len(z))
    kl = elbo_terms(q_model, x).kl
    assert kl.shape == (3,) and torch.all(kl == kl[0]), "the same q for every row: one analytic KL"
    assert (kl[0] - estimate).abs() < 4 * standard_error


def maximise_elbo(q_model: VariationalGaussian, x: torch.Tensor, steps: int, num_samples: int) -> None:
    """Adam (lr 0.05) on the reparameterised Monte Carlo ELBO, seeded."""
    optimizer = torch.optim.Adam(q_model.parameters(), lr=0.05)
    torch.manual_seed(0)
    for _ in range(steps):
        loss = -elbo(q_model, x, num_samples=num_samples).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_diagonal_family_stays_diagonal_while_learning(synthetic_model):
    model, x = synthetic_model
    q_model = VariationalGaussian(model, full_covariance=False)
    assert q_model.below_diagonal is None
    maximise_elbo(q_model, x[:1], steps=20, num_samples=4)
    scale_tril = q_model.scale_tril.detach()
    assert not torch.equal(scale_tril, torch.eye(3, dtype=torch.float64)), "the optimiser should have moved q"
    assert torch.equal(scale_tril, torch.diag_embed(scale_tril.diagonal()))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"loc": torch.zeros(2, dtype=torch.float64)}, "loc must be"),
        ({"scale_tril": torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)},
         "lower triangular"),
        ({"scale_tril": -torch.eye(3, dtype=torch.float64)}, "positive diagonal"),
        ({"scale_tril": torch.tensor([[1.0, 0.0, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64),
          "full_covariance": False}, "diagonal scale_tril"),
    ],
)
def test_variational_gaussian_refuses_an_invalid_start(synthetic_model, kwargs, message):
    model, _ = synthetic_model
    with pytest.raises(ValueError, match=message):
        VariationalGaussian(model, **kwargs)


# --- what maximising the ELBO finds ----------------------------------------------------------------


def maximise_analytic_elbo(q_model: VariationalGaussian, x: torch.Tensor, steps: int = 300) -> None:
    """Exact gradients of the closed-form ELBO, by L-BFGS: no sampling noise, so the optimum is sharp."""
    optimizer = torch.optim.LBFGS(q_model.parameters(), max_iter=steps, tolerance_grad=1e-12,
                                  tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = -analytic_elbo(q_model.model, q_model.distribution(), x)
        loss.backward()
        return loss

    optimizer.step(closure)


def test_full_covariance_q_that_maximises_the_elbo_is_the_exact_posterior(synthetic_model):
    model, x = synthetic_model
    q_model = VariationalGaussian(model)
    maximise_analytic_elbo(q_model, x[0])
    exact = model.posterior(x[0])
    torch.testing.assert_close(q_model.loc.detach(), exact.mean, rtol=0, atol=1e-6)
    torch.testing.assert_close(q_model.distribution().covariance_matrix.detach(), exact.covariance_matrix,
                               rtol=0, atol=1e-6)


def test_diagonal_q_that_maximises_the_elbo_is_the_known_mean_field_optimum(synthetic_model):
    """For a Gaussian posterior N(mu, P^-1), the best diagonal q under KL(q || p) has mean mu and
    variances 1 / P_jj, and leaves the gap 1/2 (sum_j log P_jj - log det P) (Bishop 2006, sec. 10.1.2)."""
    model, x = synthetic_model
    q_model = VariationalGaussian(model, full_covariance=False)
    maximise_analytic_elbo(q_model, x[0])
    exact = model.posterior(x[0])
    precision = torch.linalg.inv(exact.covariance_matrix)
    torch.testing.assert_close(q_model.loc.detach(), exact.mean, rtol=0, atol=1e-6)
    torch.testing.assert_close(q_model.distribution().variance.detach(), 1 / precision.diagonal(), rtol=0, atol=1e-6)
    residual_gap = 0.5 * (precision.diagonal().log().sum() - torch.logdet(precision))
    gap = model.evidence().log_prob(x[0]) - analytic_elbo(model, q_model.distribution(), x[0])
    torch.testing.assert_close(gap.detach(), residual_gap, rtol=0, atol=1e-8)
    assert residual_gap > 0.01, "a correlated posterior leaves the diagonal family a visible gap"


def test_gradient_ascent_on_the_monte_carlo_elbo_closes_the_gap(synthetic_model):
    model, x = synthetic_model
    q_model = VariationalGaussian(model)
    exact = model.posterior(x[0])
    start = kl_divergence(q_model.distribution(), exact).item()
    maximise_elbo(q_model, x[:1], steps=300, num_samples=16)
    end = kl_divergence(q_model.distribution(), exact).item()
    assert start > 1.0 and end < 0.02, f"KL(q || p(z|x)) went from {start:.3f} to {end:.4f}"
