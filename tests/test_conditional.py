"""The conditional VAE (vae_course.models.CVAE): labels in, the plain protocol out of ``given``, Bayes'
rule as a classifier, training through ``fit`` and saving through ``checkpoint``."""

from __future__ import annotations

import math

import pytest
import torch

from vae_course import checkpoint
from vae_course.data import ImageData
from vae_course.models import CVAE
from vae_course.objectives import elbo, elbo_terms, gaussian_kl, log_likelihood
from vae_course.training import evaluate, fit


def tiny_cvae() -> CVAE:
    torch.manual_seed(0)
    return CVAE(latent_dim=2, hidden_dims=(16,))


def test_the_label_enters_as_a_one_hot_vector(synthetic_images):
    model = tiny_cvae()
    first_layer = model.encoder[0]
    y = torch.tensor([0, 3, 9, 3, 1, 2])
    # The reference: the first encoder layer applied by hand to [x, one_hot(y)].
    one_hot = torch.zeros(6, 10)
    one_hot[torch.arange(6), y] = 1.0
    by_hand = torch.cat([synthetic_images.reshape(6, 784), one_hot], dim=1) @ first_layer.weight.T + first_layer.bias
    mu_by_hand = (torch.relu(by_hand) @ model.encoder[2].weight.T + model.encoder[2].bias)[:, :2]
    assert torch.allclose(model.encode(synthetic_images, y).mean, mu_by_hand, atol=1e-5)
    z = torch.zeros(6, 2)
    assert not torch.allclose(model.decode(z, 0).mean, model.decode(z, 1).mean)  # the label changes p(x|z, y)


def test_given_follows_the_protocol_so_the_objectives_apply_unchanged(synthetic_images):
    model = tiny_cvae()
    y = torch.tensor([0, 1, 2, 3, 4, 5])
    conditioned = model.given(y)
    torch.manual_seed(1)
    terms = elbo_terms(conditioned, synthetic_images)
    q = model.encode(synthetic_images, y)
    kl_by_hand = gaussian_kl(q.mean, 2 * q.stddev.log())  # closed form, independent of torch.distributions
    assert torch.allclose(terms.kl, kl_by_hand, atol=1e-5)
    assert elbo(conditioned, synthetic_images, num_samples=3).shape == (6,)
    assert log_likelihood(model.given(7), synthetic_images, num_samples=10).shape == (6,)
    codes = torch.zeros(4, 6, 2)  # (K, B, latent_dim): labels broadcast over the sample dimension
    assert conditioned.decode(codes).batch_shape == (4, 6)


def test_labels_are_checked_with_a_message_naming_the_fix(synthetic_images):
    model = tiny_cvae()
    with pytest.raises(ValueError, match="integers 0 to 9.*y.long()"):
        model.encode(synthetic_images, torch.zeros(6))
    with pytest.raises(ValueError, match="got values from 0 to 10"):
        model.encode(synthetic_images, torch.tensor([0, 1, 2, 3, 4, 10]))
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
        CVAE(num_classes=1)


def test_a_decoder_that_ignores_the_label_classifies_at_chance(synthetic_images, monkeypatch):
    """With every weight on the label inputs zero, p(x|y) is the same for every y, so Bayes' rule must
    return the prior p(y) exactly (the same random numbers are used for each label)."""
    import vae_course.models as models

    model = tiny_cvae()
    with torch.no_grad():
        model.encoder[0].weight[:, 784:] = 0
        model.decoder[0][0].weight[:, 2:] = 0
    state = torch.manual_seed(0).get_state()

    def reseeded(*args, **kwargs):
        torch.set_rng_state(state)
        return log_likelihood(*args, **kwargs)

    monkeypatch.setattr(models, "log_likelihood", reseeded)
    uniform = model.label_log_posterior(synthetic_images, num_samples=20)
    skewed_prior = torch.log_softmax(torch.arange(10.0), dim=0)
    skewed = model.label_log_posterior(synthetic_images, num_samples=20, log_prior=skewed_prior)
    assert torch.allclose(uniform, torch.full((6, 10), -math.log(10)), atol=1e-5)
    assert torch.allclose(skewed, skewed_prior.expand(6, 10), atol=1e-5)


def test_the_classifier_picks_the_label_whose_decoder_explains_the_image():
    """A hand-built CVAE whose decoder draws a bright image for label 1 and a dark one for label 0."""
    model = tiny_cvae()
    with torch.no_grad():
        for parameter in model.decoder.parameters():
            parameter.zero_()
        last = model.decoder[0][-1]
        hidden = model.decoder[0][0]
        hidden.weight[:, 2 + 1] = 1.0  # label 1 switches every hidden unit on
        last.weight.fill_(0.5)
        last.bias.fill_(-4.0)  # label 0: every pixel dark (p = 0.018); label 1: bright (p ~ 1)
    bright, dark = torch.ones(1, 1, 28, 28), torch.zeros(1, 1, 28, 28)
    posterior = model.label_log_posterior(torch.cat([bright, dark]), num_samples=10).exp()
    assert posterior[0].argmax() == 1 and posterior[1].argmax() != 1
    assert posterior.sum(dim=1).allclose(torch.ones(2))


@pytest.mark.slow
def test_fit_trains_a_cvae_from_image_data_with_labels(mnist_train, mnist_test):
    model = tiny_cvae()
    train, test = mnist_train.subset(512), mnist_test.subset(200)
    history = fit(model, train, epochs=2, test_data=test, device="cpu", progress=False)
    assert history.test["neg_elbo"][1] < history.test["neg_elbo"][0]
    again = evaluate(model, test.images, labels=test.labels)
    assert again.keys() == {"loss", "neg_elbo", "rate", "distortion"}
    with pytest.raises(ValueError, match="pass labels="):
        evaluate(model, test.images)
    with pytest.raises(TypeError, match="as an ImageData"):
        fit(model, train.images, epochs=1, device="cpu", progress=False)
    wrong = ImageData(train.images, torch.full_like(train.labels, 10), "labels out of range")
    with pytest.raises(ValueError, match="got values from 10 to 10"):
        fit(model, wrong, epochs=1, device="cpu", progress=False)


def test_a_cvae_round_trips_through_a_checkpoint(tmp_path, synthetic_images):
    model = tiny_cvae()
    checkpoint.save(model, tmp_path / "cvae.pt")
    loaded = checkpoint.load(tmp_path / "cvae.pt")
    assert isinstance(loaded, CVAE) and loaded.config == model.config
    assert torch.equal(loaded.encode(synthetic_images, 4).mean, model.encode(synthetic_images, 4).mean)
