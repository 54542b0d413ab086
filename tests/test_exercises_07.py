"""The checks of notebook 07's exercises accept the right answer and reject typical mistakes.

The right answers are computed here independently of ``vae_course.exercises.nb07``: the prior mass of
the square by ``torch.distributions.Normal``'s CDF, slerp as the formula (itself checked against a
rotation in the plane of the two codes), the retrained model's share of codes by the largest
coordinate's magnitude. Models and codes are small synthetic ones, so the file runs in seconds.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Independent, Normal

from vae_course.exercises import nb07

EDGE = Normal(0.0, 1.0).icdf(torch.tensor(0.95)).item()  # the grid's edge: the 95 % quantile


# --- exercise 1: the prior mass of the grid's square

ONE_AXIS = (Normal(0.0, 1.0).cdf(torch.tensor(EDGE)) - Normal(0.0, 1.0).cdf(torch.tensor(-EDGE))).item()
SQUARE = ONE_AXIS * ONE_AXIS


def test_exercise_1_accepts_the_product_of_the_axes():
    nb07.check_exercise_1(SQUARE, EDGE)
    nb07.check_exercise_1(torch.tensor(round(SQUARE, 4)), EDGE)  # rounded, and as a tensor


@pytest.mark.parametrize("mistake, message", [
    (ONE_AXIS, "one axis"),
    (100 * SQUARE, "percentage"),
    (1 - SQUARE, "OUTSIDE"),
    (2 * ONE_AXIS - 1, "multiply"),
    (0.95**2, "multiply it"),  # the upper quantile taken as one axis' mass
], ids=["one-axis", "percent", "complement", "inclusion-exclusion", "upper-quantile"])
def test_exercise_1_rejects(mistake, message):
    with pytest.raises(AssertionError, match=message):
        nb07.check_exercise_1(mistake, EDGE)


# --- exercise 2: spherical interpolation, the formula written out (the check judges it by geometry)


def synthetic_slerp(z_a, z_b, steps):
    omega = torch.arccos(z_a @ z_b / (z_a.norm() * z_b.norm()))
    t = torch.linspace(0, 1, steps, dtype=z_a.dtype)[:, None]  # (steps, 1)
    return (torch.sin((1 - t) * omega) * z_a + torch.sin(t * omega) * z_b) / torch.sin(omega)


def test_the_synthetic_slerp_rotates_at_a_constant_speed():  # the reference is sound: a rotation in the plane
    z_a, z_b = torch.randn(2, 20, generator=torch.Generator().manual_seed(1), dtype=torch.float64).unbind()
    e_1 = z_a / z_a.norm()
    e_2 = (z_b - (z_b @ e_1) * e_1) / (z_b - (z_b @ e_1) * e_1).norm()
    omega = torch.atan2(z_b @ e_2, z_b @ e_1)
    t = torch.linspace(0, 1, 5, dtype=torch.float64)[:, None]
    rotated = torch.cos(t * omega) * e_1 + torch.sin(t * omega) * e_2  # (5, 20)
    assert torch.allclose(synthetic_slerp(e_1, z_b / z_b.norm(), 5), rotated, atol=1e-12)


def test_exercise_2_accepts_slerp():
    nb07.check_exercise_2(synthetic_slerp)


def straight_line(z_a, z_b, steps):
    t = torch.linspace(0, 1, steps, dtype=z_a.dtype)[:, None]
    return (1 - t) * z_a + t * z_b


@pytest.mark.parametrize("mistake, message", [
    (straight_line, "straight line"),
    (lambda a, b, n: synthetic_slerp(b, a, n), "from z_b to z_a"),
    (lambda a, b, n: synthetic_slerp(a, b, n + 1)[:-1], "end at z_b"),  # t from 0 to 1 - 1/steps
    (lambda a, b, n: straight_line(a, b, n) / straight_line(a, b, n).norm(dim=1, keepdim=True) * a.norm(),
     "end at z_b|unequal angles"),  # the straight line pushed onto the sphere of z_a
    (lambda a, b, n: synthetic_slerp(a, b, n)[:, :-1], "shape"),
], ids=["straight-line", "reversed", "no-endpoint", "normalised-lerp", "wrong-shape"])
def test_exercise_2_rejects(mistake, message):
    with pytest.raises(AssertionError, match=message):
        nb07.check_exercise_2(mistake)


def test_exercise_2_rejects_normalised_lerp_between_unit_codes():
    def nlerp(z_a, z_b, steps):  # right at both ends for codes of equal length, wrong in between
        line = straight_line(z_a, z_b, steps)
        lengths = straight_line(z_a.norm()[None], z_b.norm()[None], steps)  # (steps, 1) lengths in between
        return line / line.norm(dim=1, keepdim=True) * lengths

    with pytest.raises(AssertionError, match="unequal angles"):
        nb07.check_exercise_2(nlerp)


# --- exercise 3: a code among the 7s


def synthetic_clusters():
    """Ten clusters of 20 codes each, digit k around (cos, sin) of k * 36 degrees, radius 2."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(10).repeat_interleave(20)  # (200,)
    angles = labels.double() * 2 * math.pi / 10
    centres = 2 * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)  # (200, 2)
    return centres + 0.1 * torch.randn(200, 2, generator=generator, dtype=torch.float64), labels


def test_exercise_3_accepts_a_code_among_the_7s():
    codes, labels = synthetic_clusters()
    seven = 2 * torch.tensor([math.cos(7 * 2 * math.pi / 10), math.sin(7 * 2 * math.pi / 10)])
    nb07.check_exercise_3(seven, codes, labels)
    nb07.check_exercise_3(seven.float()[None], codes.float(), labels)  # a (1, 2) float32 code is fine


@pytest.mark.parametrize("mistake, message", [
    (2 * torch.tensor([1.0, 0.0]), "are 0s"),  # among the 0s
    (torch.tensor([0.0, 0.0]), "only"),  # the origin, nearest to no cluster in particular
    (torch.zeros(20), "2-d code"),  # a code of the 20-d model
], ids=["among-the-0s", "origin", "20-d"])
def test_exercise_3_rejects(mistake, message):
    codes, labels = synthetic_clusters()
    with pytest.raises(AssertionError, match=message):
        nb07.check_exercise_3(mistake, codes, labels)


# --- exercise 4: a heavier KL term, judged on synthetic encoders


class SyntheticEncoder(torch.nn.Module):
    """q(z|x) = N(scale * x, sigma^2 I) for 2-d inputs x: a smaller scale and a sigma nearer 1 cost less KL."""

    def __init__(self, scale: float, sigma: float) -> None:
        super().__init__()
        self.scale, self.sigma = scale, sigma

    def encode(self, x):
        mu = self.scale * x
        return Independent(Normal(mu, torch.full_like(mu, self.sigma)), 1)


SYNTHETIC_X = 1.5 * torch.randn(400, 2, generator=torch.Generator().manual_seed(2))
synthetic_beta_1 = SyntheticEncoder(scale=1.0, sigma=0.2)
synthetic_beta_4 = SyntheticEncoder(scale=0.6, sigma=0.5)


def share_inside(model):
    return (model.encode(SYNTHETIC_X).mean.abs().amax(dim=1) <= EDGE).float().mean().item()


def test_the_synthetic_models_differ_inside():
    assert abs(share_inside(synthetic_beta_4) - share_inside(synthetic_beta_1)) > 0.05


def test_exercise_4_accepts_the_retrained_model_and_its_share():
    nb07.check_exercise_4((synthetic_beta_4, share_inside(synthetic_beta_4)), synthetic_beta_1, SYNTHETIC_X, EDGE)


@pytest.mark.parametrize("mistake, message", [
    (lambda: (synthetic_beta_4, 100 * share_inside(synthetic_beta_4)), "percentage"),
    (lambda: (synthetic_beta_4, share_inside(synthetic_beta_1)), "beta = 1 model's codes"),
    (lambda: (synthetic_beta_4, (synthetic_beta_4.encode(SYNTHETIC_X).mean.abs() <= EDGE).any(dim=1).float().mean()),
     "EITHER"),
    (lambda: (synthetic_beta_1, share_inside(synthetic_beta_1)), "beta = 1 model of section 1"),
    (lambda: (SyntheticEncoder(scale=1.2, sigma=0.1), 0.5), "did you pass beta=4"),  # beta < 1: a higher rate
], ids=["percent", "old-model-share", "either-coordinate", "the-old-model", "beta-below-1"])
def test_exercise_4_rejects(mistake, message):
    with pytest.raises(AssertionError, match=message):
        nb07.check_exercise_4(mistake(), synthetic_beta_1, SYNTHETIC_X, EDGE)
