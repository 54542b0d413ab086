"""Models: the distribution protocol, shapes for every model and likelihood, numerical safety, and
clear errors for every kind of bad input."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, ContinuousBernoulli, Normal

from vae_course.models import LIKELIHOODS, LOGVAR_MAX, LOGVAR_MIN, VAE, Autoencoder, ConvVAE
from vae_course.objectives import elbo, elbo_terms

GENERATIVE = [
    pytest.param(lambda likelihood: VAE(latent_dim=4, hidden_dims=(32,), likelihood=likelihood), id="VAE"),
    pytest.param(lambda likelihood: ConvVAE(latent_dim=4, likelihood=likelihood), id="ConvVAE"),
]
BASE = {"bernoulli": Bernoulli, "continuous_bernoulli": ContinuousBernoulli, "gaussian": Normal}


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("build", GENERATIVE)
def test_protocol_shapes(build, likelihood, synthetic_images):
    torch.manual_seed(0)
    model = build(likelihood)
    batch = len(synthetic_images)
    posterior = model.encode(synthetic_images)
    assert posterior.batch_shape == (batch,) and posterior.event_shape == (4,)
    assert model.prior.batch_shape == () and model.prior.event_shape == (4,)
    assert model.latent_dim == 4

    z = posterior.rsample()  # (B, 4)
    likelihood_dist = model.decode(z)
    assert likelihood_dist.batch_shape == (batch,) and likelihood_dist.event_shape == (1, 28, 28)
    assert isinstance(likelihood_dist.base_dist, BASE[likelihood])
    assert likelihood_dist.log_prob(synthetic_images).shape == (batch,)

    z_samples = posterior.rsample((3,))  # (K, B, 4): leading sample dimensions pass through
    assert model.decode(z_samples).batch_shape == (3, batch)
    assert model.decode(z_samples).log_prob(synthetic_images).shape == (3, batch)

    for images in (model.reconstruct(synthetic_images), model.sample(5), likelihood_dist.mean):
        assert images.shape[1:] == (1, 28, 28)
        assert images.min() >= 0 and images.max() <= 1  # the mean of p(x|z) is a displayable image


def test_autoencoder_is_deterministic_and_returns_tensors(synthetic_images):
    torch.manual_seed(0)
    model = Autoencoder(latent_dim=2, hidden_dims=(64, 32))
    code = model.encode(synthetic_images)
    assert isinstance(code, torch.Tensor) and code.shape == (len(synthetic_images), 2)
    logits = model.decode(code)  # the decoder's logits; reconstruct applies the sigmoid
    assert logits.shape == synthetic_images.shape
    assert torch.equal(torch.sigmoid(logits), model.reconstruct(synthetic_images))
    assert model.decode(torch.zeros(3, 5, 2)).shape == (3, 5, 1, 28, 28)
    assert not hasattr(model, "prior")


def test_reference_vae_has_the_784_400_20_architecture():
    model = VAE()
    encoder = 784 * 400 + 400 + 400 * 40 + 40  # 784 -> 400 -> (20 means, 20 log-variances)
    decoder = 20 * 400 + 400 + 400 * 784 + 784  # 20 -> 400 -> 784 logits
    assert sum(p.numel() for p in model.parameters()) == encoder + decoder


def test_gaussian_scale_learned_or_fixed(synthetic_images):
    learned = VAE(latent_dim=2, hidden_dims=(8,), likelihood="gaussian")
    fixed = VAE(latent_dim=2, hidden_dims=(8,), likelihood="gaussian", gaussian_scale=0.1)
    assert "log_scale" in dict(learned.named_parameters())
    assert "log_scale" not in dict(fixed.named_parameters())
    z = torch.zeros(1, 2)
    assert torch.allclose(fixed.decode(z).base_dist.scale, torch.tensor(0.1))
    with torch.no_grad():
        learned.log_scale.fill_(-50.0)  # would be sigma = 2e-22 without the floor
    assert learned.decode(z).base_dist.scale.min() >= 1e-2
    assert torch.isfinite(learned.decode(z).log_prob(synthetic_images[:1])).all()


def test_per_pixel_gaussian_scale_is_learned_for_each_pixel_and_survives_a_checkpoint(synthetic_images, tmp_path):
    from vae_course import checkpoint

    model = VAE(latent_dim=2, hidden_dims=(8,), likelihood="gaussian", gaussian_scale="per_pixel")
    assert model.log_scale.shape == (1, 28, 28)
    with torch.no_grad():
        model.log_scale[0, 0, 0] = -50.0  # the corner pixel's sigma would be 2e-22 without the floor
        model.log_scale[0, 14, 14] = math.log(0.5)
    scale = model.decode(torch.zeros(3, 2)).base_dist.scale  # (3, 1, 28, 28)
    assert torch.allclose(scale[:, 0, 0, 0], torch.tensor(1e-2))
    assert torch.allclose(scale[:, 0, 14, 14], torch.tensor(1e-2 + 0.5))
    assert torch.allclose(scale[:, 0, 1, 1], torch.tensor(1e-2 + 1.0))
    checkpoint.save(model, tmp_path / "m.pt")
    loaded = checkpoint.load(tmp_path / "m.pt")
    assert torch.equal(loaded.log_scale, model.log_scale) and loaded.config["gaussian_scale"] == "per_pixel"


def test_log_variance_is_kept_numerically_safe(synthetic_images):
    """Huge encoder outputs would overflow exp(logvar) to inf (or underflow sigma to 0) without the clamp."""
    torch.manual_seed(0)
    model = VAE(latent_dim=3, hidden_dims=(8,))
    last = model.encoder[1][-1]
    for extreme in (1e4, -1e4):
        with torch.no_grad():
            last.bias[3:].fill_(extreme)  # the log-variance half of the output
        posterior = model.encode(synthetic_images)
        scale = posterior.base_dist.scale
        assert torch.isfinite(scale).all() and (scale > 0).all()
        expected = torch.exp(torch.tensor(0.5 * (LOGVAR_MAX if extreme > 0 else LOGVAR_MIN)))
        torch.testing.assert_close(scale, expected.expand_as(scale))
        assert torch.isfinite(elbo(model, synthetic_images)).all()
        assert torch.isfinite(elbo_terms(model, synthetic_images).kl).all()


def test_prior_follows_the_model_to_its_dtype():
    model = VAE(latent_dim=3, hidden_dims=(8,)).double()
    assert model.prior.sample().dtype == torch.float64
    assert model.sample(2).dtype == torch.float64


def test_conv_vae_trains_a_step(synthetic_images):
    torch.manual_seed(0)
    model = ConvVAE(latent_dim=2)
    loss = -elbo(model, synthetic_images).mean()
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


# --- bad input: a ValueError that names the problem and the fix ------------------------------------

ALL_MODELS = [
    pytest.param(lambda: Autoencoder(2, (8,)), id="Autoencoder"),
    pytest.param(lambda: VAE(2, (8,)), id="VAE"),
    pytest.param(lambda: VAE(2, (8,), likelihood="continuous_bernoulli"), id="VAE-cb"),
    pytest.param(lambda: ConvVAE(2), id="ConvVAE"),
]


def _bad_inputs() -> list:
    good = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with_nan, with_inf = good.clone(), good.clone()
    with_nan[1, 0, 5, 5] = float("nan")
    with_inf[0, 0, 3, 3] = float("inf")
    return [
        pytest.param(good.view(2, 784), r"view\(-1, 1, 28, 28\)", id="flat"),
        pytest.param(good.view(2, 28, 28), r"unsqueeze\(1\)", id="no-channel"),
        pytest.param(good[0, 0], r"view\(1, 1, 28, 28\)", id="single-image"),
        pytest.param(good[:, :, :14], r"\(batch, 1, 28, 28\)", id="wrong-size"),
        pytest.param(good[:0], "empty", id="empty"),
        pytest.param((good * 255).to(torch.uint8), r"x.float\(\) / 255", id="uint8"),
        pytest.param(good * 255, "divide 0-255 pixels by 255", id="0-255-floats"),
        pytest.param(good - 0.5, r"\[0, 1\]", id="negative"),
        pytest.param(with_nan, "NaN", id="nan"),
        pytest.param(with_inf, "inf", id="inf"),
        pytest.param(good.double(), "float64 but the model is torch.float32", id="dtype-mismatch"),
    ]


@pytest.mark.parametrize("bad, message", _bad_inputs())
@pytest.mark.parametrize("build", ALL_MODELS)
def test_bad_input_is_refused_with_the_fix(build, bad, message):
    with pytest.raises(ValueError, match=message):
        build().encode(bad)


@pytest.mark.parametrize("build", ALL_MODELS)
def test_non_tensor_input_is_a_type_error(build):
    with pytest.raises(TypeError, match="torch.as_tensor"):
        build().encode([[0.0] * 784])


def test_gaussian_likelihood_accepts_values_outside_the_unit_interval_but_not_nan():
    model = VAE(2, (8,), likelihood="gaussian")
    standardised = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))  # synthetic
    assert torch.isfinite(elbo(model, standardised)).all()
    standardised[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        model.encode(standardised)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: VAE(latent_dim=0), "positive integer"),
        (lambda: VAE(latent_dim=2.5), "positive integer"),
        (lambda: VAE(hidden_dims=(400, -1)), "positive integer"),
        (lambda: Autoencoder(latent_dim=0), "positive integer"),
        (lambda: ConvVAE(latent_dim=-3), "positive integer"),
        (lambda: VAE(likelihood="poisson"), "unknown likelihood"),
        (lambda: VAE(likelihood="bernoulli", gaussian_scale=0.1), "only to likelihood='gaussian'"),
        (lambda: VAE(likelihood="gaussian", gaussian_scale=0.0), "must be a positive number, 'per_pixel' or None"),
        (lambda: VAE(likelihood="gaussian", gaussian_scale="global"), "must be a positive number, 'per_pixel' or None"),
    ],
)
def test_bad_constructor_arguments(build, message):
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize("build", [lambda: VAE(latent_dim=4), lambda: ConvVAE(4), lambda: Autoencoder(4, (8,))])
def test_decode_refuses_a_code_of_the_wrong_size_naming_latent_dim(build):
    with pytest.raises(ValueError, match=r"latent_dim is 4, so z needs shape \(\.\.\., 4\)"):
        build().decode(torch.zeros(3, 7))
