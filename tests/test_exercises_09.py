"""The checks of notebook 09's exercises accept the right answer and reject typical mistakes.

The right answers are computed here independently of the checks' own references: exercise 1's slopes
with a plain Python loop over synthetic points, exercise 2's rate, distortion and active units with
NumPy from the raw outputs of an untrained 32-d VAE's two networks, on synthetic binary images.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vae_course.exercises import nb09
from vae_course.models import VAE

from _exercise_refs import bernoulli_distortion, encoder_kl

# --- exercise 1: the slopes between neighbouring models ---------------------------------------------------

BETAS = [0.1, 0.5, 1.0, 4.0]
RATES = [60.0, 30.0, 19.0, 6.0]  # synthetic (R, D) points, falling as they should
DISTORTIONS = [100.0, 112.0, 122.0, 155.0]


def synthetic_slopes():
    return [(DISTORTIONS[i + 1] - DISTORTIONS[i]) / (RATES[i + 1] - RATES[i]) for i in range(len(BETAS) - 1)]


def test_exercise_1_accepts_the_chord_slopes():
    nb09.check_exercise_1(torch.tensor(synthetic_slopes()), BETAS, RATES, DISTORTIONS)
    nb09.check_exercise_1(torch.tensor(synthetic_slopes(), dtype=torch.float32), BETAS, RATES, DISTORTIONS)


def reciprocal():
    return [(RATES[i + 1] - RATES[i]) / (DISTORTIONS[i + 1] - DISTORTIONS[i]) for i in range(3)]


def over_beta():
    return [(DISTORTIONS[i + 1] - DISTORTIONS[i]) / (BETAS[i + 1] - BETAS[i]) for i in range(3)]


def of_neg_elbo():
    totals = [d + r for d, r in zip(DISTORTIONS, RATES)]
    return [(totals[i + 1] - totals[i]) / (RATES[i + 1] - RATES[i]) for i in range(3)]


@pytest.mark.parametrize("mistake, message", [
    (lambda: [-s for s in synthetic_slopes()], "sign"),
    (reciprocal, "dR/dD"),
    (over_beta, "change in beta"),
    (of_neg_elbo, "D \\+ R"),
    (lambda: [s * 2 for s in synthetic_slopes()], "for each pair of neighbours"),
])
def test_exercise_1_rejects_typical_mistakes(mistake, message):
    with pytest.raises(AssertionError, match=message):
        nb09.check_exercise_1(torch.tensor(mistake()), BETAS, RATES, DISTORTIONS)


def test_exercise_1_rejects_the_wrong_shape_and_a_non_tensor():
    with pytest.raises(AssertionError, match="one slope per pair"):
        nb09.check_exercise_1(torch.tensor(synthetic_slopes()[:2]), BETAS, RATES, DISTORTIONS)
    with pytest.raises(AssertionError, match="tensor"):
        nb09.check_exercise_1(synthetic_slopes(), BETAS, RATES, DISTORTIONS)


# --- exercise 2: the collapsed setting with a smaller floor -----------------------------------------------

BETA, FLOOR, LATENT = 30.0, 0.25, 32


@pytest.fixture(scope="module")
def synthetic_setup():
    """An untrained 32-d VAE, 64 synthetic binary images, and its rate, distortion, free-bits rate and active
    units on them, computed with NumPy from the networks' raw outputs (many samples for the distortion)."""
    torch.manual_seed(0)
    model = VAE(latent_dim=LATENT, hidden_dims=(16,)).eval()
    with torch.no_grad():  # four dimensions far from the prior and narrow: several nats of rate in them
        bias = model.encoder[1][-1].bias
        bias[:4] = 2.0  # means of dimensions 0-3
        bias[LATENT:LATENT + 4] = -3.0  # their log-variances
        model.encoder[1][-1].weight[:4] *= 20  # their means move with the image: active units
    generator = torch.Generator().manual_seed(1)
    synthetic_x = (torch.rand(64, 1, 28, 28, generator=generator) < 0.2).float()
    mu, logvar, kl = encoder_kl(model, synthetic_x)  # (64, LATENT) each
    values = {
        "rate": kl.sum(axis=1).mean(),
        "distortion": bernoulli_distortion(model, synthetic_x, mu, logvar),
        "free_bits_rate": np.maximum(kl.mean(axis=0), FLOOR).sum(),
        "active_units": int((mu.var(axis=0, ddof=1) > 0.01).sum()),
    }
    # Far enough apart that each mistake is told from the right answer.
    assert values["rate"] > 3 and values["free_bits_rate"] > 1.05 * values["rate"]
    assert values["active_units"] not in (0, LATENT - values["active_units"])
    return model, synthetic_x, values


def synthetic_answer(model, values, **changes):
    answer = {"model": model, "active_units": values["active_units"], "rate": values["rate"],
              "distortion": values["distortion"], "neg_elbo": values["rate"] + values["distortion"]}
    answer.update(changes)
    return answer


def bracket(values):
    """(collapsed, larger floor): less rate and more distortion, and the reverse."""
    r, d = values["rate"], values["distortion"]
    return {"collapsed": (0.1 * r, d + 5.0), "rescued": (2 * r, d - 5.0)}


def check(answer, x, values):
    nb09.check_exercise_2(answer, x, **bracket(values), beta=BETA, free_bits=FLOOR, latent_dim=LATENT)


def test_exercise_2_accepts_the_measured_numbers(synthetic_setup):
    model, x, values = synthetic_setup
    check(synthetic_answer(model, values), x, values)
    check(synthetic_answer(model, values, rate=torch.tensor(values["rate"])), x, values)


@pytest.mark.parametrize("change, message", [
    (lambda v: {"rate": v["free_bits_rate"], "neg_elbo": v["distortion"] + v["free_bits_rate"]}, "free-bits rate"),
    (lambda v: {"rate": BETA * v["rate"], "neg_elbo": v["distortion"] + BETA * v["rate"]}, "beta \\* R"),
    (lambda v: {"rate": 64 * v["rate"], "neg_elbo": v["distortion"] + 64 * v["rate"]}, "summed over the test images"),
    (lambda v: {"distortion": 64 * v["distortion"], "neg_elbo": 64 * v["distortion"] + v["rate"]}, "summed"),
    (lambda v: {"neg_elbo": v["distortion"] + BETA * v["rate"]}, "training loss"),
    (lambda v: {"neg_elbo": v["distortion"] + v["free_bits_rate"]}, "adds the free-bits rate"),
    (lambda v: {"neg_elbo": v["distortion"] - v["rate"]}, "distortion \\+ rate"),
    (lambda v: {"active_units": LATENT - v["active_units"]}, "INACTIVE"),
    (lambda v: {"active_units": LATENT}, "count of active units"),
])
def test_exercise_2_rejects_typical_mistakes(synthetic_setup, change, message):
    model, x, values = synthetic_setup
    with pytest.raises(AssertionError, match=message):
        check(synthetic_answer(model, values, **change(values)), x, values)


def test_exercise_2_rejects_a_model_not_between_the_others(synthetic_setup):
    model, x, values = synthetic_setup
    answer = synthetic_answer(model, values)
    r, d = values["rate"], values["distortion"]
    with pytest.raises(AssertionError, match="rate is not between"):  # as if the floor were larger than 0.5
        nb09.check_exercise_2(answer, x, collapsed=(0.1 * r, d + 5), rescued=(0.9 * r, d - 5), beta=BETA,
                              free_bits=FLOOR, latent_dim=LATENT)
    with pytest.raises(AssertionError, match="distortion is not between"):
        nb09.check_exercise_2(answer, x, collapsed=(0.1 * r, d - 1), rescued=(2 * r, d - 5), beta=BETA,
                              free_bits=FLOOR, latent_dim=LATENT)


def test_exercise_2_rejects_the_wrong_latent_size(synthetic_setup):
    _, x, values = synthetic_setup
    with pytest.raises(AssertionError, match="32 latent dimensions"):
        check(synthetic_answer(VAE(latent_dim=20), values), x, values)


# --- exercise 3: a floor on the batch's mean rate -----------------------------------------------------------

def right_floor(rate, floor):
    return torch.clamp(rate.mean(), min=floor)


@pytest.mark.parametrize("total_floor", [
    right_floor,
    lambda rate, floor: torch.maximum(rate.mean(), torch.tensor(floor)),
    lambda rate, floor: floor + torch.nn.functional.relu(rate.mean() - floor),
    lambda rate, floor: torch.where(rate.mean() > floor, rate.mean(), torch.full((), floor)),
    lambda rate, floor: rate.mean() if rate.mean() > floor else torch.tensor(floor),  # no gradient below: right
    lambda rate, floor: max(rate.mean(), torch.tensor(floor)),
])
def test_exercise_3a_accepts_the_floor_on_the_mean_rate(total_floor):
    nb09.check_exercise_3a(total_floor)


@pytest.mark.parametrize("total_floor, message", [
    (lambda rate, floor: torch.clamp(rate, min=floor).mean(), "each image's rate"),
    (lambda rate, floor: torch.clamp(rate.sum(), min=floor), "summed rate"),
    (lambda rate, floor: torch.clamp(rate.mean(), max=floor), "smaller of the two"),
    (lambda rate, floor: torch.clamp(rate, min=floor), "one number for the whole batch"),
    (lambda rate, floor: max(floor, rate.mean().item()), "not a Python number"),
    (lambda rate, floor: max(floor, rate.mean()), "Python's max"),  # a float when the floor wins
    (lambda rate, floor: torch.tensor(max(floor, rate.mean().item()), requires_grad=True), "lost its gradient"),
    (lambda rate, floor: torch.tensor(max(floor, rate.mean().item())), "lost its gradient"),
    # The right value, but a gradient of 1/B below the floor too.
    (lambda rate, floor: torch.clamp(rate.mean(), min=floor) + (rate.mean() - rate.mean().detach()), "not its gradient"),
    (lambda rate, floor: torch.clamp(rate.mean(), min=floor) + 0.5, "larger of floor and rate.mean"),
])
def test_exercise_3a_rejects_typical_mistakes(total_floor, message):
    with pytest.raises(AssertionError, match=message):
        nb09.check_exercise_3a(total_floor)


def test_exercise_3a_rejects_a_value_right_only_where_the_floor_does_not_bind():
    # Right above the floor, but no gradient there: the rate would never be pushed down again.
    with pytest.raises(AssertionError, match="lost its gradient"):
        nb09.check_exercise_3a(lambda rate, floor: torch.clamp(rate.mean(), min=floor).detach().requires_grad_())


def check_3(answer, x, values, collapsed_below=2.0, floor_above=0.5):
    """Exercise 3's check with the bracket placed around the synthetic model's own rate."""
    nb09.check_exercise_3(answer, x, collapsed_rate=values["rate"] - collapsed_below,
                          floor=values["rate"] + floor_above, latent_dim=LATENT)


def answer_3(model, values, **changes):
    return {"model": model, "active_units": values["active_units"], "rate": values["rate"], **changes}


def test_exercise_3_accepts_the_measured_numbers(synthetic_setup):
    model, x, values = synthetic_setup
    check_3(answer_3(model, values), x, values)
    check_3(answer_3(model, values, rate=torch.tensor(values["rate"]), active_units=np.int64(values["active_units"])),
            x, values)


@pytest.mark.parametrize("change, message", [
    (lambda v: {"rate": 64 * v["rate"]}, "summed over the test images"),
    (lambda v: {"rate": v["free_bits_rate"]}, "not this model's test rate"),
    (lambda v: {"rate": v["rate"] + 0.5}, "what the loss charged"),  # check_3's floor, where the rate is below it
    (lambda v: {"active_units": LATENT - v["active_units"]}, "INACTIVE"),
    (lambda v: {"active_units": v["active_units"] + 1}, "count of active units"),
    (lambda v: {"rate": "12"}, "one number"),
])
def test_exercise_3_rejects_typical_mistakes(synthetic_setup, change, message):
    model, x, values = synthetic_setup
    with pytest.raises(AssertionError, match=message):
        check_3(answer_3(model, values, **change(values)), x, values)


def test_exercise_3_rejects_a_collapsed_model_and_one_above_the_floor(synthetic_setup):
    model, x, values = synthetic_setup
    with pytest.raises(AssertionError, match="collapsed"):
        check_3(answer_3(model, values), x, values, collapsed_below=0.5)
    with pytest.raises(AssertionError, match="well above the floor"):
        check_3(answer_3(model, values), x, values, floor_above=-1.5)
    with pytest.raises(AssertionError, match="lacks the key"):
        check_3({"model": model, "rate": values["rate"]}, x, values)
    with pytest.raises(AssertionError, match="32 latent dimensions"):
        check_3(answer_3(VAE(latent_dim=20), values), x, values)


def test_exercise_3_rejects_a_model_whose_dimensions_all_sit_at_one_floor():
    """As the per-dimension free bits leave them: the same mean and variance in every dimension, written
    into an untrained VAE's last encoder layer, so every dimension's KL is 1/2 (0.25 + e^-1 - 1 + 1)."""
    torch.manual_seed(0)
    model = VAE(latent_dim=LATENT, hidden_dims=(16,)).eval()
    with torch.no_grad():
        layer = model.encoder[1][-1]
        layer.weight.zero_()  # the same q(z|x) for every image: no active unit
        layer.bias[:LATENT], layer.bias[LATENT:] = 0.5, -1.0  # mu = 0.5, log sigma^2 = -1
    x = (torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(3)) < 0.2).float()
    rate = LATENT * 0.5 * (0.25 + np.exp(-1.0))
    with pytest.raises(AssertionError, match="sits near one floor"):
        nb09.check_exercise_3({"model": model, "active_units": 0, "rate": rate}, x, collapsed_rate=rate - 2,
                              floor=rate + 0.5, latent_dim=LATENT)
