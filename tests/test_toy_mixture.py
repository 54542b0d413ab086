"""Forward- and reverse-KL fits to a Gaussian mixture against independent references: the mixture's
moments by hand and by numerical integration, closed-form Gaussian KLs from torch.distributions,
and KL surfaces evaluated on a grid."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vae_course.toy.mixture import (
    bimodal_mixture,
    fit_forward_kl,
    fit_reverse_kl,
    grid_kl,
    reverse_kl,
)

PERTURBATIONS = [(0.1, 0.0), (-0.1, 0.0), (0.0, 0.05), (0.0, -0.05), (0.07, 0.07), (-0.07, -0.07)]


def normal(mean: float, scale: float) -> Normal:
    return Normal(torch.tensor(mean, dtype=torch.float64), torch.tensor(scale, dtype=torch.float64))


def synthetic_normal_pairs() -> list[tuple[Normal, Normal]]:
    """Synthetic pairs of univariate Gaussians, float64, from narrow to wide."""
    generator = torch.Generator().manual_seed(0)
    means = 3.0 * torch.randn(6, 2, generator=generator, dtype=torch.float64)
    scales = torch.exp(torch.empty(6, 2, dtype=torch.float64).uniform_(-1.0, 1.0, generator=generator))
    return [(normal(m[0].item(), s[0].item()), normal(m[1].item(), s[1].item())) for m, s in zip(means, scales)]


def test_grid_kl_matches_torch_distributions_for_two_gaussians():
    for p, q in synthetic_normal_pairs():
        torch.testing.assert_close(grid_kl(p, q), kl_divergence(p, q), rtol=1e-9, atol=1e-9)


def test_grid_kl_broadcasts_over_a_batch_of_gaussians():
    p = normal(0.5, 1.3)
    q = Normal(torch.tensor([[-1.0], [2.0]], dtype=torch.float64), torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64))
    torch.testing.assert_close(grid_kl(p, q), kl_divergence(p, q), rtol=1e-9, atol=1e-9)  # (2, 3)


def test_forward_kl_fit_matches_the_moments_by_numerical_integration():
    p = bimodal_mixture(means=(-1.5, 0.5, 3.0), scales=(0.3, 1.0, 0.7), weights=(0.2, 0.5, 0.3))
    q = fit_forward_kl(p)
    x = torch.linspace(-20.0, 20.0, 20001, dtype=torch.float64)
    density = p.log_prob(x).exp()
    mean = torch.trapezoid(x * density, x)
    torch.testing.assert_close(q.loc, mean, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(q.scale**2, torch.trapezoid((x - mean) ** 2 * density, x), rtol=1e-9, atol=1e-9)


def test_forward_kl_fit_is_moment_matching():
    p = bimodal_mixture()
    q = fit_forward_kl(p)
    # By hand for the defaults: w = (0.4, 0.6), mu = (-2, 2), s = (0.5, 0.8).
    mean = 0.4 * -2.0 + 0.6 * 2.0
    variance = 0.4 * (0.25 + 4.0) + 0.6 * (0.64 + 4.0) - mean**2
    assert q.loc.item() == pytest.approx(mean, abs=1e-12)
    assert q.scale.item() == pytest.approx(math.sqrt(variance), abs=1e-12)


@pytest.mark.parametrize("shift, stretch", PERTURBATIONS)
def test_forward_kl_fit_is_a_minimum_of_the_grid_forward_kl(shift, stretch):
    p = bimodal_mixture()
    q = fit_forward_kl(p)
    perturbed = normal(q.loc.item() + shift, q.scale.item() + stretch)
    assert grid_kl(p, q) < grid_kl(p, perturbed)


def test_reverse_kl_matches_grid_kl():
    p = bimodal_mixture()
    for mean, scale in [(-2.0, 0.5), (2.0, 0.8), (0.4, 2.0), (1.0, 0.3), (-3.0, 3.0)]:
        q = normal(mean, scale)
        estimate = reverse_kl(p, q.loc, q.scale.log())
        reference = grid_kl(q, p, lower=-40.0, upper=40.0, num_points=16001)  # wide enough for q's tails
        torch.testing.assert_close(estimate, reference, rtol=1e-8, atol=1e-8)


def test_reverse_kl_of_a_gaussian_target_matches_torch_distributions():
    p = normal(0.5, 1.5)
    for q, _ in synthetic_normal_pairs():
        torch.testing.assert_close(reverse_kl(p, q.loc, q.scale.log()), kl_divergence(q, p), rtol=1e-9, atol=1e-9)


def test_reverse_kl_gradient_matches_finite_differences():
    p = bimodal_mixture()
    mean = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    log_scale = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    grad_mean, grad_log_scale = torch.autograd.grad(reverse_kl(p, mean, log_scale), (mean, log_scale))
    h = 1e-5
    with torch.no_grad():
        fd_mean = (reverse_kl(p, mean + h, log_scale) - reverse_kl(p, mean - h, log_scale)) / (2 * h)
        fd_log_scale = (reverse_kl(p, mean, log_scale + h) - reverse_kl(p, mean, log_scale - h)) / (2 * h)
    torch.testing.assert_close(grad_mean, fd_mean, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(grad_log_scale, fd_log_scale, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("init_mean, component", [(1.0, 1), (3.0, 1), (-3.0, 0)])
def test_reverse_kl_fit_lands_on_one_mode(init_mean, component):
    p = bimodal_mixture()  # modes well separated: each fit should sit on one component
    fit = fit_reverse_kl(p, init_mean)
    mode = p.component_distribution.loc[component].item()
    width = p.component_distribution.scale[component].item()
    assert abs(fit.q.loc.item() - mode) < 0.05
    assert abs(fit.q.scale.item() - width) < 0.05
    assert fit.kls[-1] < fit.kls[0]


@pytest.mark.parametrize("init_mean", [1.0, -3.0])
@pytest.mark.parametrize("shift, stretch", PERTURBATIONS)
def test_reverse_kl_fit_is_a_local_minimum_of_the_grid_reverse_kl(init_mean, shift, stretch):
    p = bimodal_mixture()
    q = fit_reverse_kl(p, init_mean).q
    perturbed = normal(q.loc.item() + shift, q.scale.item() + stretch)
    assert grid_kl(q, p) < grid_kl(perturbed, p)


def test_each_fit_is_better_on_the_divergence_it_minimised():
    p = bimodal_mixture()
    forward, reverse = fit_forward_kl(p), fit_reverse_kl(p, 1.0).q
    assert grid_kl(p, forward) < grid_kl(p, reverse)
    assert grid_kl(reverse, p) < grid_kl(forward, p)


def test_fit_reverse_kl_is_deterministic():
    p = bimodal_mixture()
    first, second = fit_reverse_kl(p, 0.5, num_steps=50), fit_reverse_kl(p, 0.5, num_steps=50)
    assert torch.equal(first.means, second.means) and torch.equal(first.scales, second.scales)
    assert first.means.shape == first.scales.shape == first.kls.shape == (51,)


@pytest.mark.parametrize(
    "kwargs",
    [dict(weights=(0.5, 0.6)), dict(weights=(1.2, -0.2)), dict(means=(0.0,), scales=(1.0,), weights=(0.5, 0.5))],
)
def test_bimodal_mixture_refuses_bad_weights(kwargs):
    with pytest.raises(ValueError):
        bimodal_mixture(**kwargs)
