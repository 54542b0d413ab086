"""Checks for the exercises of notebook 07 (exploring the latent space).

Each check raises an ``AssertionError`` that names the mistake and the method, never the expected
number, and returns ``None`` for a right answer. The references do not repeat what the exercise asks
the learner to write: the prior mass of the grid's square comes from ``math.erf``, a spherical
interpolation is judged by geometry (unit length, equal angles, the bisector as midpoint), a code that
should decode to a 7 by the labels of its nearest test codes, and a retrained model by its rate,
written out as the closed-form Gaussian KL, and by its own codes.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..latent import interpolate
from ._common import number, posterior_kl

__all__ = ["EXERCISE_4_BETA", "check_exercise_1", "check_exercise_2", "check_exercise_3", "check_exercise_4"]

EXERCISE_4_BETA = 4.0  # the weight of the KL term in exercise 4


def check_exercise_1(answer: float, edge: float) -> None:
    r"""Exercise 1: the prior mass of the grid's square :math:`[-e, e]^2` (:math:`e` = ``edge``) under
    :math:`p(z) = \mathcal{N}(0, I_2)`,

    .. math::

        P(|z_1| \le e \text{ and } |z_2| \le e) = P(|z_1| \le e)^2 = \operatorname{erf}(e / \sqrt{2})^2

    (independent coordinates: multiply). The reference is ``math.erf``, to 1e-4.
    """
    value = number(answer, "answer_1")
    one_axis = math.erf(float(edge) / math.sqrt(2))  # P(|z_1| <= edge) for z_1 ~ N(0, 1)
    expected = one_axis**2

    def close(candidate: float) -> bool:
        return abs(value - candidate) <= 1e-4

    if close(expected):
        return
    if close(one_axis):
        raise AssertionError("that is the mass along one axis: the two coordinates of z ~ N(0, I) are independent, "
                             "so the square's mass is the product of the two axes' masses")
    if abs(value - 100 * expected) <= 1e-2:
        raise AssertionError("that is a percentage: give the probability as a number between 0 and 1")
    if close(1 - expected):
        raise AssertionError("that is the mass OUTSIDE the square: the question asks for the mass inside it")
    if close(2 * one_axis) or close(2 * one_axis - 1):
        raise AssertionError("the two axes' masses add up only for a union or an overlap of bands: for the square "
                             "(both coordinates inside) multiply them")
    raise AssertionError("compute P(|z_1| <= edge) with the standard normal CDF, Phi(edge) - Phi(-edge), and "
                         "multiply it by the same for z_2 (independent coordinates)")


def check_exercise_2(slerp: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]) -> None:
    r"""Exercise 2: ``slerp(z_a, z_b, steps)``, the spherical interpolation

    .. math::

        z(t) = \frac{\sin((1 - t) \Omega)}{\sin \Omega} z_a + \frac{\sin(t \Omega)}{\sin \Omega} z_b, \quad
        \cos \Omega = \frac{z_a \cdot z_b}{\|z_a\| \, \|z_b\|},

    for :math:`t` evenly spaced from 0 to 1, shape (steps, latent_dim). Judged by geometry on random 20-d
    codes (float64): it starts at :math:`z_a` and ends at :math:`z_b`; it is not the straight line; between
    two unit codes every point has length 1, consecutive points are equal angles apart, and the midpoint of
    an odd path is the bisector :math:`(z_a + z_b) / \|z_a + z_b\|`.
    """
    assert callable(slerp), "answer_2 should be your function slerp(z_a, z_b, steps)"
    generator = torch.Generator().manual_seed(0)
    z_a, z_b = torch.randn(2, 20, generator=generator, dtype=torch.float64).unbind()
    path = slerp(z_a, z_b, 7)
    assert isinstance(path, torch.Tensor) and path.shape == (7, 20), (
        f"expected a tensor of shape (7, 20), got {tuple(getattr(path, 'shape', ())) or type(path).__name__}")
    path = path.double()
    if torch.allclose(path[0], z_b, atol=1e-6) and torch.allclose(path[-1], z_a, atol=1e-6):
        raise AssertionError("your path runs from z_b to z_a: at t = 0 the weight sin((1 - t) Omega) / sin(Omega) "
                             "of z_a is 1")
    assert torch.allclose(path[0], z_a, atol=1e-6) and torch.allclose(path[-1], z_b, atol=1e-6), (
        "the path should start at z_a (t = 0) and end at z_b (t = 1): t = torch.linspace(0, 1, steps)")
    assert not torch.allclose(path, interpolate(z_a, z_b, 7), atol=1e-3), (
        "that is the straight line (1 - t) z_a + t z_b: weight the codes by sin((1 - t) Omega) and sin(t Omega)")
    unit_a, unit_b = z_a / z_a.norm(), z_b / z_b.norm()
    arc = slerp(unit_a, unit_b, 7).double()
    assert torch.allclose(arc.norm(dim=1), torch.ones(7, dtype=torch.float64), atol=1e-6), (
        "between two unit codes slerp stays on the unit sphere: check the sin(Omega) in the denominator and "
        "that Omega is the angle arccos(z_a . z_b / (|z_a| |z_b|))")
    cosines = torch.nn.functional.cosine_similarity(arc[:-1], arc[1:], dim=1)  # (6,) consecutive angles
    assert torch.allclose(cosines, cosines[0].expand(6), atol=1e-6), (
        "your steps are unequal angles: a straight line pushed back onto the sphere is not slerp; weight the "
        "codes by sin((1 - t) Omega) and sin(t Omega) with t evenly spaced")
    bisector = (unit_a + unit_b) / (unit_a + unit_b).norm()
    assert torch.allclose(arc[3], bisector, atol=1e-6), (
        "halfway (t = 1/2) slerp between unit codes should be the bisector (z_a + z_b) / |z_a + z_b|")


def check_exercise_3(answer: torch.Tensor, codes: torch.Tensor, labels: torch.Tensor, digit: int = 7,
                     neighbours: int = 15) -> None:
    """Exercise 3: a 2-d code that decodes to a ``digit`` (7), found with the sliders.

    Passes when most (more than half) of the ``neighbours`` test codes nearest to it (``codes``, the 2-d
    posterior means of the test digits, with their ``labels``) are that digit.
    """
    z = torch.as_tensor(answer).detach().double().cpu().reshape(-1)
    reference = torch.as_tensor(codes).detach().double().cpu()
    assert z.shape == (reference.shape[1],), (
        f"answer_3 should be a {reference.shape[1]}-d code, explorer_2d.latent, got {z.numel()} numbers")
    distances = (reference - z).pow(2).sum(dim=1)  # (N,) squared distances to the test codes
    nearest = distances.argsort()[:neighbours]
    votes = torch.bincount(torch.as_tensor(labels).cpu()[nearest], minlength=10)
    assert 2 * votes[digit] > neighbours, (
        f"only {votes[digit].item()} of the {neighbours} test codes nearest to your code are {digit}s (most are "
        f"{votes.argmax().item()}s): move the sliders towards the {digit}s on the map")


def _inside_share(codes: torch.Tensor, edge: float) -> float:
    """The share of ``codes`` (N, 2) inside the square [-edge, edge]^2: both coordinates within edge."""
    codes = torch.as_tensor(codes).detach().double().cpu()
    return ((codes[:, 0].abs() <= edge) & (codes[:, 1].abs() <= edge)).double().mean().item()


def check_exercise_4(answer: tuple[torch.nn.Module, float], model_beta_1: torch.nn.Module, x: torch.Tensor,
                     edge: float) -> None:
    r"""Exercise 4: ``answer = (vae_beta_4, inside_4)``: a 2-d VAE trained like ``model_beta_1`` but with
    :math:`\beta = 4` (``fit(..., beta=4)``), and the share of the test codes, its posterior means of ``x``,
    inside the grid's square [-edge, edge] x [-edge, edge].

    The model is judged by its rate, the closed-form :math:`\mathrm{KL}(q(z \mid x) \,\|\, \mathcal{N}(0, I))`
    averaged over :math:`x`: weighting the KL
    term more must give a lower rate than ``model_beta_1``'s. The share is recomputed from the model's codes.
    """
    assert isinstance(answer, (tuple, list)) and len(answer) == 2, "answer_4 should be a pair (vae_beta_4, inside_4)"
    model, share = answer
    assert model is not model_beta_1, "that is the beta = 1 model of section 1: train a new one with beta=4"
    assert hasattr(model, "encode"), "the first element of answer_4 should be the VAE you trained with beta=4"
    model_dim = model.encode(x[:1]).mean.shape[-1]
    assert model_dim == 2, f"train a VAE with a 2-d latent space, VAE(latent_dim=2), not {model_dim}-d"
    assert posterior_kl(model, x).rate < posterior_kl(model_beta_1, x).rate, (
        "your model's rate (its KL per test image) is not below the beta = 1 model's: a heavier KL term should "
        "lower it; did you pass beta=4 to fit (beta < 1 weights the KL term less)?")
    value = number(share, "inside_4")
    with torch.no_grad():
        codes = model.encode(x).mean
        codes_beta_1 = model_beta_1.encode(x).mean
    expected = _inside_share(codes, edge)
    tolerance = 0.5 / len(x)
    if abs(value - expected) <= tolerance:
        return
    if abs(value - 100 * expected) <= 100 * tolerance:
        raise AssertionError("that is a percentage: give the share as a number between 0 and 1")
    if abs(value - _inside_share(codes_beta_1, edge)) <= tolerance:
        raise AssertionError("that is the share of the beta = 1 model's codes: encode x_test with your new model")
    either = (torch.as_tensor(codes).abs() <= edge).any(dim=1).double().mean().item()
    if abs(value - either) <= tolerance:
        raise AssertionError("that counts a code inside when EITHER coordinate is within the edge: inside the "
                             "square means both are, (codes.abs() <= edge).all(dim=1)")
    raise AssertionError("your share does not match your model's codes: take the posterior means "
                         "model.encode(x_test).mean and count the share with both coordinates within [-edge, edge]")
