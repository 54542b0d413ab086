"""Checks for the exercises of notebook 09 (β, the rate-distortion plane and posterior collapse).

Each check raises an ``AssertionError`` that names the mistake and the method, never the expected
number, and returns ``None`` for a right answer. The references do not repeat what the exercise asks
the learner to write: exercise 1's slopes come from ``torch.diff`` of the points, exercise 2's rate
from the closed-form Gaussian KL written out on the encoder's mean and standard deviation, its
distortion from many reparameterised samples per image, and its active units from the variance of the
posterior means, computed here rather than with ``latent.active_units``.
"""

from __future__ import annotations

import torch

from ._common import check_rate_distortion, number, posterior_kl

__all__ = ["check_exercise_1", "check_exercise_2"]


def check_exercise_1(answer: torch.Tensor, betas: list[float], rates: list[float], distortions: list[float]) -> None:
    r"""Exercise 1: the slope of the rate-distortion curve between each pair of neighbouring models of the
    sweep, in the order of ``betas`` (increasing):

    .. math::

        s_i = \frac{D_{i+1} - D_i}{R_{i+1} - R_i}, \qquad i = 1, \ldots, n - 1,

    with :math:`R_i`, :math:`D_i` the test rate and distortion of the model trained with :math:`\beta_i`.
    """
    assert isinstance(answer, torch.Tensor), "answer_1 should be a tensor of slopes"
    rate = torch.tensor(rates, dtype=torch.float64)
    distortion = torch.tensor(distortions, dtype=torch.float64)
    beta = torch.tensor(betas, dtype=torch.float64)
    got = answer.detach().double().cpu()
    n = len(betas)
    assert got.shape == (n - 1,), (
        f"answer_1 should have shape ({n - 1},), one slope per pair of neighbouring models, got {tuple(got.shape)}")
    expected = torch.diff(distortion) / torch.diff(rate)

    def close(candidate: torch.Tensor) -> bool:
        return torch.allclose(got, candidate, rtol=1e-4, atol=1e-6)

    if close(expected):
        return
    if close(-expected):
        raise AssertionError("wrong sign: more rate buys less distortion, so the curve falls and its slope is negative")
    if close(torch.diff(rate) / torch.diff(distortion)):
        raise AssertionError("that is dR/dD: the curve plots the distortion D against the rate R, so its slope is "
                             "(change in D) / (change in R)")
    if close(torch.diff(distortion) / torch.diff(beta)):
        raise AssertionError("you divided by the change in beta: the slope in the plane is "
                             "(change in D) / (change in R)")
    if close(torch.diff(distortion + rate) / torch.diff(rate)):
        raise AssertionError("that is the slope of D + R against R: use the distortion D alone in the numerator")
    raise AssertionError("for each pair of neighbours (beta_i, beta_i+1) divide the change in distortion by the change "
                         "in rate, (D[i+1] - D[i]) / (R[i+1] - R[i]), in the order of BETAS")


def check_exercise_2(
    answer: dict,
    x: torch.Tensor,
    collapsed: tuple[float, float],
    rescued: tuple[float, float],
    beta: float,
    free_bits: float,
    latent_dim: int,
) -> None:
    r"""Exercise 2: the collapsed setting (``latent_dim`` dimensions, weight ``beta``) trained with a smaller
    free-bits floor ``free_bits``, and its number of active units, its test rate :math:`R`, distortion
    :math:`D` and :math:`-\mathrm{ELBO} = D + R` on the binarized test images ``x``.

    ``answer`` = {"model": the trained VAE, "active_units": A, "rate": R, "distortion": D, "neg_elbo": D + R},
    each number a mean over the images in nats per image. ``collapsed`` and ``rescued`` are the (rate,
    distortion) of the collapsed baseline and of the larger floor: the new model must lie between them on
    both. Active units: :math:`\operatorname{Var}_x \mathbb{E}_q[z_d] > 0.01` (Burda et al.), with the
    variance over the test images.
    """
    assert isinstance(answer, dict), ('answer_2 should be a dict {"model": ..., "active_units": ..., "rate": ..., '
                                      '"distortion": ..., "neg_elbo": ...}')
    missing = {"model", "active_units", "rate", "distortion", "neg_elbo"} - set(answer)
    assert not missing, f"answer_2 lacks the key(s) {sorted(missing)}"
    model = answer["model"]
    assert hasattr(model, "encode") and hasattr(model, "prior"), "answer_2['model'] should be the trained VAE"
    assert model.latent_dim == latent_dim, (
        f"the collapsed setting has {latent_dim} latent dimensions, this model has {model.latent_dim}: "
        f"train VAE(latent_dim={latent_dim})")
    units = number(answer["active_units"], "answer_2['active_units']")
    posterior = posterior_kl(model, x)  # encoded once: the rate, the free-bits rate and the activity
    mu, kl = posterior.mu, posterior.kl  # (N, latent_dim) each
    free_bits_rate = torch.clamp(kl.mean(dim=0), min=free_bits).sum().item()  # what the training loss charged
    variance = ((mu - mu.mean(dim=0)) ** 2).sum(dim=0) / (len(mu) - 1)  # (latent_dim,)
    expected_units = int((variance > 0.01).sum())

    if units != expected_units:
        if units == latent_dim - expected_units:
            raise AssertionError("that counts the INACTIVE units: count the dimensions whose posterior mean varies "
                                 "over the test images by more than 0.01")
        raise AssertionError("that is not this model's count of active units: active_units(model, x_test)")
    floored = ("that is the free-bits rate, each dimension's KL floored at the free bits: what the training charged, "
               "not the rate; report the KL itself, elbo_terms(...).rate.mean()")
    adds_floored = "that adds the free-bits rate: the -ELBO is D + R with the true rate R"
    rate, distortion = check_rate_distortion(
        "answer_2", answer, x, posterior, beta, "measure it with", rate_mistakes=[(free_bits_rate, floored)],
        neg_elbo_mistakes=[(beta * free_bits_rate, adds_floored), (free_bits_rate, adds_floored)])
    (rate_collapsed, distortion_collapsed), (rate_rescued, distortion_rescued) = collapsed, rescued
    retrain = (f"VAE(latent_dim={latent_dim}) after torch.manual_seed(0), fit(..., epochs=NUM_EPOCHS, binarized=True, "
               f"beta={beta:g}, free_bits={free_bits:g})")
    assert rate_collapsed < rate < rate_rescued, (
        f"its rate is not between the collapsed model's and the larger floor's: train it as they were, {retrain}")
    assert distortion_rescued < distortion < distortion_collapsed, (
        f"its distortion is not between the collapsed model's and the larger floor's: train it as they were, {retrain}")
