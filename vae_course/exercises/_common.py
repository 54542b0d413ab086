"""What several exercise checks share: reading a learner's numbers, comparing numbers, the independent
references for a VAE's rate and distortion (closed form written out, many samples), and the checks of a
measured rate (notebooks 06, 08, 09) and of a rate, distortion and -ELBO (06 and 09)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from typing import NamedTuple

import torch

# Samples of z per image for a reference distortion: enough that its own noise is small beside the
# one-sample estimate the learner reports.
DISTORTION_SAMPLES = 32


def numbers(answer: object, count: int, what: str, hint: str = "", finite: bool = True,
            finite_hint: str = "") -> list[float]:
    """``count`` Python floats from numbers, a NumPy array or a tensor of any shape, finite unless
    ``finite=False``; the message for a wrong type, a wrong count (``hint`` added) or a NaN or infinity
    (``finite_hint`` added) names the mistake."""
    expected = "one number" if count == 1 else f"{count} numbers"
    values = None
    if answer is not None and not isinstance(answer, (bool, str)):
        with contextlib.suppress(TypeError, ValueError, RuntimeError):
            values = torch.as_tensor(answer, dtype=torch.float64).flatten()
    if isinstance(answer, (list, tuple)):
        got = f"a {type(answer).__name__} that holds something other than numbers"
    else:
        got = f"{'None' if answer is None else 'a ' + type(answer).__name__}, which is not a number"
    assert values is not None, f"{what} should be {expected}, got {got}"
    size = values.numel()
    assert size == count, f"{what} should be {expected}, got {size} number{'s' * (size != 1)}{hint}"
    assert not finite or torch.isfinite(values).all(), (
        f"{what} should be {'a finite number' if count == 1 else 'finite numbers'}, got nan or inf{finite_hint}")
    return values.tolist()


def number(answer: object, what: str, hint: str = "", finite: bool = True, finite_hint: str = "") -> float:
    """A Python float from a number, a NumPy scalar or a one-element tensor: ``numbers`` of one (a check that
    names the mistake behind a NaN passes ``finite=False``)."""
    return numbers(answer, 1, what, hint, finite, finite_hint)[0]


def is_close(value: float, target: float, rtol: float = 1e-4, atol: float = 1e-9) -> bool:
    """|value - target| <= rtol |target| + atol, for a finite ``target`` (an infinite one matches nothing)."""
    return math.isfinite(target) and abs(value - target) <= rtol * abs(target) + atol


class Posterior(NamedTuple):
    """The encoder's mean and standard deviation (N, latent_dim), float64, and the closed-form
    KL(q(z_d|x) || N(0, 1)) of each image and dimension (N, latent_dim)."""

    mu: torch.Tensor
    sigma: torch.Tensor
    kl: torch.Tensor

    @property
    def rate(self) -> float:
        """The mean over the images of the summed KL, nats per image."""
        return self.kl.sum(dim=1).mean().item()


def posterior_kl(model: torch.nn.Module, x: torch.Tensor) -> Posterior:
    """The closed form 1/2 (mu_d^2 + sigma_d^2 - 1 - log sigma_d^2), written out on ``model``'s q(z|x)."""
    with torch.no_grad():
        q = model.encode(x)
        mu, sigma = q.mean.double(), q.stddev.double()  # (N, latent_dim)
    return Posterior(mu, sigma, 0.5 * (mu**2 + sigma**2 - 1 - torch.log(sigma**2)))


def reference_distortion(model: torch.nn.Module, x: torch.Tensor, posterior: Posterior,
                         samples: int = DISTORTION_SAMPLES) -> tuple[float, float]:
    """(mean distortion -E_q[log p(x|z)] over ``samples`` reparameterised samples per image, the standard
    error of a one-sample-per-image mean distortion). A generator of its own leaves the learner's random
    stream as it was."""
    mu, sigma = posterior.mu.to(x.dtype), posterior.sigma.to(x.dtype)
    with torch.no_grad():
        generator = torch.Generator(device=mu.device).manual_seed(0)
        noise = torch.randn((samples, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)
        distortion = -model.decode(mu + sigma * noise).log_prob(x)  # (S, N)
    # A one-sample estimate per image varies by the within-image spread of -log p(x|z).
    return distortion.mean().item(), math.sqrt(distortion.var(dim=0).mean().item() / x.shape[0])


def check_rate(rate: float, posterior: Posterior, num_images: int, method: str,
               mistakes: Sequence[tuple[float, str]] = ()) -> None:
    """``rate`` must be the model's test rate, ``posterior``'s closed form (nats per image, a mean over the
    ``num_images`` images). Else each mistake (a wrong value, its message) is tried, then the rate summed over
    the images; the last message names the ``method``."""
    if is_close(rate, posterior.rate, rtol=1e-3):
        return
    for wrong, message in [*mistakes, (num_images * posterior.rate,
                                       "that rate is summed over the test images: average it (nats per image)")]:
        assert not is_close(rate, wrong, rtol=1e-3), message
    raise AssertionError(f"that is not this model's test rate: {method}")


def check_rate_distortion(name: str, answer: dict, x: torch.Tensor, posterior: Posterior, beta: float,
                          how_to_measure: str, rate_mistakes: Sequence[tuple[float, str]] = (),
                          neg_elbo_mistakes: Sequence[tuple[float, str]] = ()) -> tuple[float, float]:
    r"""The test rate :math:`R`, distortion :math:`D` and :math:`-\mathrm{ELBO} = D + R` of ``answer["model"]``
    on the images ``x`` (notebooks 06 and 09): ``answer``'s "rate", "distortion" and "neg_elbo", each a mean
    over the images in nats per image. Returns (R, D).

    The reference rate is ``posterior``'s closed form (``posterior_kl(model, x)``), the reference distortion
    ``reference_distortion`` within five standard errors of a one-sample estimate. The model was trained with
    weight ``beta`` on :math:`R`. Each mistake is (a wrong value, its message): ``rate_mistakes`` are tried
    before :math:`\beta R` and :math:`R` summed over the images, ``neg_elbo_mistakes`` (the wrong term added to
    :math:`D` in place of :math:`R`) after :math:`D + \beta R` and :math:`D - R`. ``how_to_measure`` begins the
    method named for a wrong rate or distortion, e.g. "measure it as the ablation does,".
    """
    rate = number(answer["rate"], f"{name}['rate']")
    distortion = number(answer["distortion"], f"{name}['distortion']")
    neg_elbo = number(answer["neg_elbo"], f"{name}['neg_elbo']")
    num_images = x.shape[0]
    expected_distortion, standard_error = reference_distortion(answer["model"], x, posterior)

    def method(term: str) -> str:
        return f"{how_to_measure} elbo_terms(model, x_test).{term}.mean(), on the binarized test images x_test"

    check_rate(rate, posterior, num_images, method("rate"), [
        *rate_mistakes,
        (beta * posterior.rate, "that is beta * R, the weighted term of the training loss: the rate is the KL itself"),
    ])
    if abs(distortion - expected_distortion) > 5 * standard_error + 1e-3 * abs(expected_distortion):
        assert not is_close(distortion, num_images * expected_distortion, rtol=0.05), (
            "that distortion is summed over the test images: average it (nats per image)")
        raise AssertionError(f"that is not this model's test distortion: {method('distortion')}")
    if not is_close(neg_elbo, distortion + rate, rtol=1e-4):
        for wrong, message in [
            (beta * rate, "that is the training loss D + beta R: the -ELBO is D + R, whatever trained the model"),
            (-rate, "wrong sign: the -ELBO is distortion + rate, D + R, the KL is added"),
            *neg_elbo_mistakes,
        ]:
            assert not is_close(neg_elbo, distortion + wrong, rtol=1e-4), message
        raise AssertionError("the -ELBO is distortion + rate, from the two numbers you measured")
    return rate, distortion
