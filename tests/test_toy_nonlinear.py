"""The nonlinear toy model and its grid integration against independent references: the closed-form
evidence and posterior of the linear-Gaussian model (a linear curve is that model), the normalisation
of p(x) over the x plane, a Monte Carlo estimate with its standard error, and the grid's own
convergence as it refines."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch.distributions import MultivariateNormal

from vae_course.toy import LinearGaussian
from vae_course.toy.nonlinear import (
    CurveModel,
    figure_eight,
    grid_log_evidence,
    grid_points,
    grid_posterior,
    trapezoid_log_weights,
)

F64 = torch.float64
Z_GRID = torch.linspace(-8.0, 8.0, 1601, dtype=F64)


@pytest.fixture
def linear_pair() -> tuple[CurveModel, LinearGaussian]:
    """The same model twice: a CurveModel with a linear curve f(z) = w z + b, and LinearGaussian."""
    weight = torch.tensor([[1.5], [-0.7], [0.4]], dtype=F64)  # (D, 1)
    bias = torch.tensor([0.3, -1.0, 2.0], dtype=F64)  # (D,)
    curve = CurveModel(lambda z: z @ weight.T + bias, noise_scale=0.6)
    return curve, LinearGaussian(weight, bias, noise_scale=0.6)


def synthetic_points(model: LinearGaussian, n: int = 5, seed: int = 0) -> torch.Tensor:
    """Synthetic x drawn from the model's own evidence, plus one far in its tail."""
    torch.manual_seed(seed)
    x = model.evidence().sample((n,))
    return torch.cat([x, model.bias[None] + 4.0])


def test_linear_curve_evidence_is_the_linear_gaussian_closed_form(linear_pair):
    curve, exact = linear_pair
    x = synthetic_points(exact)
    torch.testing.assert_close(grid_log_evidence(curve, x, Z_GRID), exact.evidence().log_prob(x), rtol=0, atol=1e-9)


def test_linear_curve_posterior_is_the_closed_form_posterior(linear_pair):
    curve, exact = linear_pair
    x = synthetic_points(exact)
    posterior = grid_posterior(curve, x, Z_GRID)  # (B, G)
    reference = exact.posterior(x).log_prob(Z_GRID[:, None, None]).exp().T  # (G, B) => (B, G)
    torch.testing.assert_close(posterior, reference, rtol=1e-8, atol=1e-10)


def test_posterior_integrates_to_one_and_is_bayes_rule_pointwise():
    model = CurveModel()
    x = torch.tensor([[0.5, 0.9], [0.0, 0.0], [1.3, -1.2]], dtype=F64)
    posterior = grid_posterior(model, x, Z_GRID)  # (B, G)
    weights = trapezoid_log_weights(Z_GRID).exp()
    torch.testing.assert_close((posterior * weights).sum(dim=1), torch.ones(3, dtype=F64), rtol=0, atol=1e-10)
    # Bayes' rule, rebuilt from independent densities: p(z|x) p(x) = N(x; f(z), sigma^2 I) N(z; 0, 1).
    z = Z_GRID[::50, None]  # (33, 1)
    likelihood = MultivariateNormal(figure_eight(z)[:, None], 0.01 * torch.eye(2, dtype=F64)).log_prob(x)  # (33, B)
    prior = MultivariateNormal(torch.zeros(1, dtype=F64), torch.eye(1, dtype=F64)).log_prob(z)[:, None]
    evidence = grid_log_evidence(model, x, Z_GRID)
    torch.testing.assert_close(posterior[:, ::50].log() + evidence[:, None], (likelihood + prior).T)


def test_evidence_integrates_to_one_over_the_x_plane():
    model = CurveModel(noise_scale=0.15)
    axis = torch.linspace(-2.0, 2.0, 81, dtype=F64)  # the curve lies in [-1, 1]^2, noise adds 0.15
    x1, x2 = torch.meshgrid(axis, axis, indexing="xy")
    x = torch.stack([x1.flatten(), x2.flatten()], dim=-1)  # (81 * 81, 2)
    log_p = grid_log_evidence(model, x, torch.linspace(-7.0, 7.0, 701, dtype=F64))
    area = (axis[1] - axis[0]) ** 2
    assert abs((log_p.exp() * area).sum().item() - 1.0) < 1e-4


def test_evidence_agrees_with_monte_carlo_within_its_error_bar():
    model = CurveModel(noise_scale=0.2)
    x = torch.tensor([[0.5, 0.9], [0.0, 0.0], [-0.6, -0.5]], dtype=F64)
    torch.manual_seed(0)
    z = model.prior.sample((400_000,))  # (N, 1)
    likelihood = model.decode(z[:, None]).log_prob(x).exp()  # (N, B): p(x) = E_p(z)[p(x|z)]
    estimate = likelihood.mean(dim=0)
    standard_error = likelihood.std(dim=0) / math.sqrt(len(z))
    grid = grid_log_evidence(model, x, Z_GRID).exp()
    assert torch.all((grid - estimate).abs() < 4 * standard_error)


def test_grid_answer_converges_as_the_grid_refines():
    model = CurveModel()
    x = torch.tensor([[0.5, 0.9], [0.0, 0.0], [0.3, -0.8]], dtype=F64)
    finest = grid_log_evidence(model, x, torch.linspace(-8.0, 8.0, 6401, dtype=F64))
    errors = [(grid_log_evidence(model, x, torch.linspace(-8.0, 8.0, n, dtype=F64)) - finest).abs().max().item()
              for n in (41, 81, 161, 321)]
    assert all(coarse > fine for coarse, fine in zip(errors, errors[1:])), errors
    assert errors[0] > 0.1 and errors[-1] < 1e-5, errors


@pytest.mark.parametrize("latent_dim", [2, 3])
def test_tensor_product_grid_gives_the_exact_evidence_in_several_dimensions(latent_dim):
    model = LinearGaussian.random(data_dim=4, latent_dim=latent_dim, noise_scale=1.5, seed=latent_dim)
    x = model.evidence().sample((3,))
    grid = torch.linspace(-6.0, 6.0, 31, dtype=F64)
    exact = model.evidence().log_prob(x)
    torch.testing.assert_close(grid_log_evidence(model, x, grid), exact, rtol=0, atol=1e-6)
    # Tiny chunks exercise the running log-sum-exp across many pieces of the grid.
    torch.testing.assert_close(grid_log_evidence(model, x, grid, max_batch_elements=3 * 4999), exact, rtol=0, atol=1e-6)


def test_grid_points_enumerate_every_combination_with_product_weights():
    grid = torch.tensor([-1.0, 0.0, 0.5, 2.0], dtype=F64)
    points, log_weights = grid_points(grid, latent_dim=3)
    expected = torch.tensor(list(itertools.product(grid.tolist(), repeat=3)), dtype=F64)  # row-major order
    torch.testing.assert_close(points, expected)
    one_dim = trapezoid_log_weights(grid).exp()
    expected_weights = torch.tensor([math.prod(w) for w in itertools.product(one_dim.tolist(), repeat=3)], dtype=F64)
    torch.testing.assert_close(log_weights.exp(), expected_weights)
    middle, _ = grid_points(grid, latent_dim=3, start=5, stop=9)
    torch.testing.assert_close(middle, expected[5:9])


def test_trapezoid_weights_integrate_a_line_exactly_on_an_uneven_grid():
    grid = torch.tensor([0.0, 0.1, 0.4, 0.45, 1.0], dtype=F64)
    weights = trapezoid_log_weights(grid).exp()
    assert abs((weights * (3 * grid + 1)).sum().item() - 2.5) < 1e-12  # integral_0^1 (3z + 1) dz = 2.5
    with pytest.raises(ValueError, match="increasing"):
        trapezoid_log_weights(grid.flip(0))
    with pytest.raises(ValueError, match="1-d"):
        trapezoid_log_weights(grid[:1])


def test_figure_eight_posterior_at_the_crossing_is_bimodal():
    model = CurveModel()
    assert torch.allclose(figure_eight(torch.tensor([[math.pi / 2], [-math.pi / 2]], dtype=F64)),
                          torch.zeros(2, 2, dtype=F64), atol=1e-12)
    posterior = grid_posterior(model, torch.zeros(1, 2, dtype=F64), Z_GRID)[0]  # (G,)
    torch.testing.assert_close(posterior, posterior.flip(0))  # symmetric: p(z|0) = p(-z|0)
    peak = Z_GRID[posterior.argmax()].abs().item()
    assert abs(peak - math.pi / 2) < 0.05
    assert posterior[Z_GRID.abs().argmin()] < 1e-6 * posterior.max()  # z = 0 explains x = 0 badly


def test_ancestral_samples_scatter_around_the_curve_with_the_noise_scale():
    model = CurveModel(noise_scale=0.1)
    torch.manual_seed(0)
    z, x = model.sample(20_000)
    assert z.shape == (20_000, 1) and x.shape == (20_000, 2)
    assert abs(z.std().item() - 1.0) < 0.02
    assert abs((x - figure_eight(z)).std().item() - 0.1) < 0.002


def test_grid_posterior_is_for_a_one_dimensional_latent_only():
    model = LinearGaussian.random(data_dim=3, latent_dim=2)
    with pytest.raises(ValueError, match="1-d latent"):
        grid_posterior(model, torch.zeros(1, 3, dtype=F64), Z_GRID)
    with pytest.raises(ValueError, match="noise_scale"):
        CurveModel(noise_scale=0.0)
