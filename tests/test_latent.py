"""vae_course.latent, against independent references: closed forms written out by hand, torch.special.ndtr,
and codes built by hand. Models here are untrained VAEs on synthetic (random) images."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal

from vae_course.latent import (
    active_units,
    interpolate,
    kl_per_dimension,
    normal_grid,
    posterior_sweep,
    traverse,
    unit_activity,
)
from vae_course.models import VAE
from vae_course.objectives import elbo_terms


@pytest.fixture
def model() -> VAE:
    torch.manual_seed(0)
    return VAE(latent_dim=5, hidden_dims=(32,)).eval()


@pytest.fixture
def synthetic_batch() -> torch.Tensor:
    """Synthetic (random, not real) images in [0, 1]: (64, 1, 28, 28)."""
    return torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(1))


def test_kl_per_dimension_sums_to_the_rate_and_matches_univariate_kls(model, synthetic_batch):
    kl = kl_per_dimension(model, synthetic_batch)
    assert kl.shape == (5,)
    rate = elbo_terms(model, synthetic_batch).rate.mean()
    assert torch.allclose(kl.sum(), rate, rtol=1e-5)
    q = model.encode(synthetic_batch)
    mu, sigma = q.mean, q.stddev  # (64, 5)
    by_hand = (0.5 * (mu**2 + sigma**2 - 1) - torch.log(sigma)).mean(dim=0)  # closed form per dimension
    assert torch.allclose(kl, by_hand, rtol=1e-5, atol=1e-6)


def test_unit_activity_is_the_variance_of_posterior_means_over_images(model, synthetic_batch):
    activity = unit_activity(model, synthetic_batch)
    means = model.encode(synthetic_batch).mean.detach().double()  # (64, 5)
    reference = ((means - means.mean(0)) ** 2).sum(0) / (len(means) - 1)  # unbiased variance by hand
    assert torch.allclose(activity.double(), reference, rtol=1e-5)
    assert active_units(model, synthetic_batch, threshold=0.0) == int((reference > 0).sum())
    assert active_units(model, synthetic_batch, threshold=float(reference.max()) + 1) == 0


def test_a_unit_that_ignores_the_image_is_inactive_and_carries_no_kl(model, synthetic_batch):
    # Zero the weights that produce mu_0 and log-variance_0 and their biases: q(z_0|x) = N(0, 1) = p(z_0).
    last = model.encoder[1][-1]  # Linear(32, 10): rows 0..4 are mu, rows 5..9 the log-variances
    with torch.no_grad():
        for row in (0, 5):
            last.weight[row] = 0
            last.bias[row] = 0
    kl = kl_per_dimension(model, synthetic_batch)
    assert kl[0].abs() < 1e-7
    assert unit_activity(model, synthetic_batch)[0] == 0
    assert active_units(model, synthetic_batch) == int((unit_activity(model, synthetic_batch)[1:] > 0.01).sum())


def test_unit_activity_needs_two_images(model, synthetic_batch):
    with pytest.raises(ValueError, match="at least 2 images"):
        unit_activity(model, synthetic_batch[:1])


def test_normal_grid_is_equally_spaced_in_probability_and_in_reading_order():
    grid = normal_grid(7, quantile=0.1)
    assert grid.shape == (49, 2)
    lines = grid[:7, 0].double()
    # torch.special.ndtr is an implementation of Phi independent of Normal.icdf
    assert torch.allclose(torch.special.ndtr(lines), torch.linspace(0.1, 0.9, 7, dtype=torch.float64), atol=1e-6)
    assert (grid[:7, 1] == grid[0, 1]).all() and grid[0, 1] == lines.max().float()  # top row: largest z_2
    assert (grid[::7, 0] == grid[0, 0]).all()  # first column: smallest z_1
    assert grid[-1].tolist() == pytest.approx([lines.max().item(), lines.min().item()], abs=1e-6)


@pytest.mark.parametrize("bad", [1, 2.5, True])
def test_normal_grid_refuses_bad_sizes(bad):
    with pytest.raises(ValueError, match="num_per_side"):
        normal_grid(bad)


def test_normal_grid_refuses_bad_quantiles():
    with pytest.raises(ValueError, match="quantile"):
        normal_grid(5, quantile=0.5)


def test_posterior_sweep_is_mu_plus_c_sigma_per_dimension():
    mu, sigma = torch.tensor([[1.0, -2.0, 0.5]]), torch.tensor([[0.1, 0.2, 0.3]])
    q = torch.distributions.Independent(Normal(mu, sigma), 1)
    codes = posterior_sweep(q, torch.tensor([-2.0, 0.0, 3.0]))
    expected = torch.tensor([[0.8, -2.4, -0.1], [1.0, -2.0, 0.5], [1.3, -1.4, 1.4]])
    assert torch.allclose(codes, expected, atol=1e-6)


def test_posterior_sweep_refuses_a_batch_of_posteriors(model, synthetic_batch):
    with pytest.raises(ValueError, match="ONE image"):
        posterior_sweep(model.encode(synthetic_batch[:2]), torch.zeros(3))


def test_traverse_sets_one_dimension_on_the_prior_scale_and_keeps_the_rest():
    z = torch.tensor([0.5, -1.0, 2.0])
    values = torch.tensor([-3.0, 0.0, 3.0])
    codes = traverse(z, 1, values)
    assert torch.equal(codes[:, 1], values)  # set, not mu + sigma * value
    assert torch.equal(codes[:, [0, 2]], z[[0, 2]].expand(3, 2))
    assert torch.equal(z, torch.tensor([0.5, -1.0, 2.0])), "the input code is not modified"


def test_traverse_refuses_bad_dimensions_and_batches():
    with pytest.raises(ValueError, match="out of range"):
        traverse(torch.zeros(3), 3, torch.zeros(2))
    with pytest.raises(ValueError, match="one code"):
        traverse(torch.zeros(2, 3), 0, torch.zeros(2))


def test_interpolate_walks_the_straight_line_in_equal_steps():
    z_start, z_end = torch.tensor([0.0, 2.0]), torch.tensor([4.0, -2.0])
    path = interpolate(z_start, z_end, 5)
    assert torch.equal(path[0], z_start) and torch.equal(path[-1], z_end)
    steps = path[1:] - path[:-1]
    assert torch.allclose(steps, ((z_end - z_start) / 4).expand(4, 2))
    assert math.isclose(path[2, 0].item(), 2.0) and math.isclose(path[2, 1].item(), 0.0, abs_tol=1e-7)


def test_interpolate_refuses_mismatched_codes_and_too_few_steps():
    with pytest.raises(ValueError, match="two codes"):
        interpolate(torch.zeros(2), torch.zeros(3), 4)
    with pytest.raises(ValueError, match="steps"):
        interpolate(torch.zeros(2), torch.ones(2), 1)
