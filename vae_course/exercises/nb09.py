"""Checks for the exercises of notebook 09 (β, the rate-distortion plane and posterior collapse).

Each check raises an ``AssertionError`` that names the mistake and the method, never the expected
number, and returns ``None`` for a right answer. The references do not repeat what the exercise asks
the learner to write: exercise 1's slopes come from ``torch.diff`` of the points, exercise 2's rate
from the closed-form Gaussian KL written out on the encoder's mean and standard deviation, its
distortion from many reparameterised samples per image, and its active units from the variance of the
posterior means, computed here rather than with ``latent.active_units``. Exercise 3's penalty is tried
on made-up rates against the written-out maximum and its gradient; its model's rate is the same closed
form, and its units the same count.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._common import Posterior, check_rate, check_rate_distortion, is_close, number, posterior_kl

__all__ = ["check_exercise_1", "check_exercise_2", "check_exercise_3", "check_exercise_3a"]


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
    posterior = _collapse_model_and_units("answer_2", answer, ("rate", "distortion", "neg_elbo"), x, latent_dim)
    free_bits_rate = torch.clamp(posterior.kl.mean(dim=0), min=free_bits).sum().item()  # what the training charged
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


def _collapse_model_and_units(name: str, answer: dict, numbers: tuple[str, ...], x: torch.Tensor,
                              latent_dim: int) -> Posterior:
    """The checks shared by exercises 2 and 3: ``answer`` is a dict holding a VAE with ``latent_dim``
    dimensions, its active units and ``numbers``; the units are this model's on ``x``. Returns the
    model's q(z|x) on ``x`` (``posterior_kl``), encoded once for the rest of the check."""
    keys = ("model", "active_units", *numbers)
    assert isinstance(answer, dict), f"{name} should be a dict with the keys {list(keys)}"
    missing = set(keys) - set(answer)
    assert not missing, f"{name} lacks the key(s) {sorted(missing)}"
    model = answer["model"]
    assert hasattr(model, "encode") and hasattr(model, "prior"), f"{name}['model'] should be the trained VAE"
    assert model.latent_dim == latent_dim, (
        f"the collapsed setting has {latent_dim} latent dimensions, this model has {model.latent_dim}: "
        f"train VAE(latent_dim={latent_dim})")
    units = number(answer["active_units"], f"{name}['active_units']")
    posterior = posterior_kl(model, x)
    mu = posterior.mu  # (N, latent_dim)
    variance = ((mu - mu.mean(dim=0)) ** 2).sum(dim=0) / (len(mu) - 1)  # (latent_dim,): Var_x E_q[z_d]
    expected_units = int((variance > 0.01).sum())
    if units != expected_units:
        if units == latent_dim - expected_units:
            raise AssertionError("that counts the INACTIVE units: count the dimensions whose posterior mean varies "
                                 "over the test images by more than 0.01")
        raise AssertionError("that is not this model's count of active units: active_units(model, x_test)")
    return posterior


def check_exercise_3a(total_floor: Callable[[torch.Tensor, float], torch.Tensor]) -> None:
    r"""Exercise 3 (a), the penalty: ``total_floor(rate, floor)`` takes the per-image rates :math:`R_b` of a
    mini-batch, shape (B,), and returns the scalar

    .. math::

        \max\left(\lambda, \frac{1}{B} \sum_b R_b\right),

    a floor on the batch's mean rate, whose gradient is 0 below the floor and :math:`1/B` per image above
    it. Tried on a batch of four made-up rates, with a floor above and a floor below their mean.
    """
    rates = [2.0, 6.0, 10.0, 30.0]  # mean 12, sum 48
    for floor in (16.0, 8.0):
        rate = torch.tensor(rates, requires_grad=True)
        got = total_floor(rate, floor)
        assert isinstance(got, torch.Tensor), (
            "total_floor should return a tensor computed from rate, not a Python number: no .item() or float(); "
            "Python's max(floor, ...) returns the float floor when it wins, torch.clamp or torch.maximum do not")
        assert got.numel() == 1, (
            f"total_floor should return one number for the whole batch, got shape {tuple(got.shape)}: floor the "
            "batch's mean rate, not each image's")
        value = got.detach().double().item()
        mean = sum(rates) / len(rates)
        if not is_close(value, max(floor, mean)):
            for wrong, message in [
                (sum(max(floor, r) for r in rates) / len(rates), "that floors each image's rate and then averages: "
                 "the floor is on the batch's mean rate, max(floor, mean of the rates)"),
                (max(floor, sum(rates)), "that floors the batch's summed rate: average over the images first"),
                (min(floor, mean), "that is the smaller of the two: the floor is what is charged at the least, the "
                 "larger of the floor and the mean rate"),
            ]:
                assert not is_close(value, wrong), message
            raise AssertionError("total_floor(rate, floor) should be the larger of floor and rate.mean()")
        # Below the floor a result that carries no gradient at all is right: a constant floor.
        if got.requires_grad:
            got.backward()
        gradient = rate.grad.double() if rate.grad is not None else torch.zeros(len(rates), dtype=torch.float64)
        expected_gradient = 0.0 if floor > mean else 1.0 / len(rates)
        assert gradient.abs().sum() > 0 or expected_gradient == 0, (
            "the result has lost its gradient where the mean rate is above the floor: keep it a tensor computed "
            "from rate (no .item(), no torch.tensor(...) of a number)")
        assert torch.allclose(gradient, torch.full_like(gradient, expected_gradient)), (
            "the value is right but not its gradient: below the floor the rate must get none, above it each image "
            "1/B, as the mean gives")


def check_exercise_3(answer: dict, x: torch.Tensor, collapsed_rate: float, floor: float, latent_dim: int) -> None:
    r"""Exercise 3 (b), the model: the collapsed setting (``latent_dim`` dimensions, :math:`\beta` = 30) trained
    with a floor of ``floor`` nats on the batch's mean rate (``total_floor``), its number of active units and
    its test rate :math:`R` on the binarized test images ``x``.

    ``answer`` = {"model": the trained VAE, "active_units": A, "rate": R}, the rate a mean over the images in
    nats per image. Trained as asked, the model has not collapsed (its rate is above ``collapsed_rate`` + 1
    nat), takes at most about what is free (above the floor each nat of rate costs :math:`\beta` = 30 nats of
    distortion, so its rate stays below ``floor`` + 1), and is not a per-dimension free-bits model, whose
    floor holds every dimension's KL near it: there the largest dimension's KL is within twice the mean
    dimension's.
    """
    posterior = _collapse_model_and_units("answer_3", answer, ("rate",), x, latent_dim)
    rate = number(answer["rate"], "answer_3['rate']")
    check_rate(rate, posterior, len(x), "elbo_terms(model, x_test).rate.mean(), on the binarized test images x_test", [
        (max(floor, posterior.rate), "that is what the loss charged, the floor where the rate is below it: report "
         "the rate the model pays, elbo_terms(model, x_test).rate.mean()"),
    ])
    retrain = (f"VAE(latent_dim={latent_dim}) after torch.manual_seed(0), trained for NUM_EPOCHS epochs on "
               f"binarized batches with the loss distortion.mean() + COLLAPSE_BETA * total_floor(rate, {floor:g})")
    assert rate > collapsed_rate + 1, f"this model has collapsed as the model without a floor did: train it as {retrain}"
    assert rate < floor + 1, (
        f"its rate is well above the floor of {floor:g} nats, where each nat costs beta: train it as {retrain}")
    kl = posterior.kl.mean(dim=0)  # (latent_dim,): each dimension's mean KL
    assert kl.max() > 2 * kl.mean(), (
        "every dimension of this model sits near one floor, as under the per-dimension free bits of "
        f"fit(..., free_bits=...): train it with total_floor in a loop of your own, {retrain}")
