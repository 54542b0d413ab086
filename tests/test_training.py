"""fit, evaluate, History and get_device (vae_course.training)."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch

from vae_course.models import VAE, Autoencoder
from vae_course.training import History, evaluate, fit, get_device

VAE_KEYS = {"loss", "neg_elbo", "rate", "distortion"}


def tiny_vae() -> VAE:
    torch.manual_seed(0)
    return VAE(latent_dim=2, hidden_dims=(32,))


def tiny_fit(model, data, **kwargs) -> History:
    kwargs = {"epochs": 1, "device": "cpu", "progress": False, **kwargs}
    return fit(model, data, **kwargs)


def weights_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.slow
def test_real_training_improves_test_elbo(mnist_train, mnist_test):
    torch.manual_seed(0)
    model = VAE()
    test_images = mnist_test.images[:500]
    untrained = evaluate(model, test_images)["neg_elbo"]
    history = fit(model, mnist_train.images[:2000], epochs=2, test_data=test_images, device="cpu", progress=False)

    assert 400 < untrained < 700  # ~550 nats: an untrained decoder guesses p = 1/2 everywhere
    assert history.test["neg_elbo"][-1] < untrained - 100  # observed ~220 nats
    for split in (history.train, history.test):
        assert set(split) == VAE_KEYS
        assert all(len(values) == 2 for values in split.values())
        for neg_elbo, rate, distortion in zip(split["neg_elbo"], split["rate"], split["distortion"]):
            assert neg_elbo == pytest.approx(rate + distortion, rel=1e-3)
            assert rate > 0
    assert history.epochs == 2
    assert len(history.seconds) == len(history.images_per_second) == 2
    assert all(s > 0 for s in history.seconds) and all(r > 0 for r in history.images_per_second)


@pytest.mark.slow
def test_same_seed_is_deterministic_and_other_seed_differs(mnist_train, mnist_test):
    data, test = mnist_train.images[:512], mnist_test.images[:256]
    runs = []
    for seed in (0, 0, 1):
        model = tiny_vae()
        torch.rand(seed + len(runs))  # fit's seed, not the global RNG state it is called in, decides
        runs.append((model, tiny_fit(model, data, epochs=2, test_data=test, seed=seed)))
    (m0, h0), (m1, h1), (m2, h2) = runs
    assert h0.train == h1.train and h0.test == h1.test
    assert h0.seconds != [] and weights_equal(m0, m1)
    assert h2.train["loss"] != h0.train["loss"]
    assert h2.test["loss"] != h0.test["loss"]
    assert not weights_equal(m0, m2)


@pytest.mark.slow
def test_resumed_run_matches_uninterrupted_run(mnist_train, tmp_path):
    data = mnist_train.images[:512]
    straight = tiny_vae()
    h_straight = tiny_fit(straight, data, epochs=2)
    resumed = tiny_vae()
    tiny_fit(resumed, data, epochs=1, checkpoint=tmp_path / "m.pt")
    resumed = tiny_vae()  # a fresh model, as after a restart
    h_resumed = tiny_fit(resumed, data, epochs=2, checkpoint=tmp_path / "m.pt")
    assert h_resumed.train == h_straight.train
    assert weights_equal(resumed, straight)


@pytest.mark.slow
def test_autoencoder_trains_through_fit(mnist_train, mnist_test):
    torch.manual_seed(0)
    model = Autoencoder(2, (32,))
    history = tiny_fit(model, mnist_train.images[:1000], epochs=2, test_data=mnist_test.images[:256])
    assert set(history.train) == set(history.test) == {"loss", "distortion"}
    assert history.train["loss"] == history.train["distortion"]
    assert history.train["loss"][1] < history.train["loss"][0]
    assert all(math.isfinite(v) and v > 0 for v in history.test["loss"])


@pytest.mark.slow
def test_beta_zero_loss_is_distortion(mnist_train):
    history = tiny_fit(tiny_vae(), mnist_train.images[:512], beta=0)
    assert history.train["loss"][0] == pytest.approx(history.train["distortion"][0], rel=1e-6)
    assert history.train["rate"][0] > 0  # the rate is still measured, just not minimised


@pytest.mark.slow
def test_beta_four_weights_the_rate(mnist_train, mnist_test):
    model = tiny_vae()
    test = mnist_test.images[:256]
    history = tiny_fit(model, mnist_train.images[:512], beta=4, test_data=test)
    for split in (history.train, history.test):
        loss, rate, distortion = split["loss"][0], split["rate"][0], split["distortion"][0]
        assert loss == pytest.approx(distortion + 4 * rate, rel=1e-4)
        assert loss > split["neg_elbo"][0]
    line = history.describe_epoch(0)
    assert f"train loss {history.train['loss'][0]:.2f}" in line, "the minimised loss is shown when beta != 1"
    metrics = evaluate(model, test, beta=4)
    assert set(metrics) == VAE_KEYS
    assert metrics["loss"] == pytest.approx(metrics["distortion"] + 4 * metrics["rate"], rel=1e-4)
    assert metrics["neg_elbo"] == pytest.approx(metrics["distortion"] + metrics["rate"], rel=1e-4)


@pytest.mark.slow
def test_kl_only_collapses_the_posterior(mnist_train, mnist_test):
    history = tiny_fit(tiny_vae(), mnist_train.images[:1000], epochs=2, lr=1e-2, loss="kl_only",
                       test_data=mnist_test.images[:256])
    assert history.train["rate"][-1] < 0.5  # observed ~0.02 nats
    assert history.test["rate"][-1] < 0.5
    assert history.train["loss"] == history.train["rate"]
    assert history.test["distortion"][-1] > 400  # nothing is reconstructed


@pytest.mark.slow
def test_binarized_training_is_finite(mnist_train, mnist_test):
    history = tiny_fit(tiny_vae(), mnist_train.images[:512], binarized=True, test_data=mnist_test.images[:256])
    values = [v for split in (history.train, history.test) for vs in split.values() for v in vs]
    assert len(values) == 8 and all(math.isfinite(v) for v in values)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"epochs": -1}, "epochs must be a positive integer"),
        ({"epochs": 1.5}, "epochs must be a positive integer"),
        ({"epochs": True}, "epochs must be a positive integer"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"lr": 0}, "lr must be a positive number"),
        ({"lr": -1.0}, "lr must be a positive number"),
        ({"lr": math.nan}, "lr must be a positive number"),
        ({"beta": -1.0}, "beta must be a number >= 0"),
        ({"beta": True}, "beta must be a number >= 0"),
        ({"lr": True}, "lr must be a positive number"),
        ({"loss": "mse"}, "unknown loss 'mse'"),
        ({"loss": "reconstruction"}, "beta=0"),
    ],
)
def test_invalid_arguments_raise(synthetic_images, kwargs, message):
    kwargs = {"epochs": 1, **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        fit(tiny_vae(), synthetic_images, device="cpu", progress=False, **kwargs)


def test_elbo_loss_for_autoencoder_raises(synthetic_images):
    with pytest.raises(ValueError, match="needs a model with a prior"):
        tiny_fit(Autoencoder(2, (32,)), synthetic_images, loss="elbo")


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda x: torch.empty(0, 1, 28, 28), ValueError, "empty"),
        (lambda x: x.view(-1, 784), ValueError, "view(-1, 1, 28, 28)"),
        (lambda x: (x * 255).to(torch.uint8), ValueError, "/ 255"),
        (lambda x: x.tolist(), TypeError, "train_data must be an image tensor"),
    ],
    ids=["empty", "flat", "uint8", "list"],
)
def test_invalid_train_data_raises(synthetic_images, make, error, message):
    synthetic_bad = make(synthetic_images)
    with pytest.raises(error, match=re.escape(message)):
        tiny_fit(tiny_vae(), synthetic_bad)


def test_image_data_and_tensor_give_equal_results(mnist_train):
    data = mnist_train.subset(256)
    from_dataset = tiny_fit(tiny_vae(), data)
    from_tensor = tiny_fit(tiny_vae(), data.images)
    assert from_dataset.train == from_tensor.train


def test_progress_bar_only_when_asked(mnist_train, capsys):
    data = mnist_train.images[:256]
    tiny_fit(tiny_vae(), data, progress=True)
    shown = capsys.readouterr()
    assert "training" in shown.err
    tiny_fit(tiny_vae(), data, progress=False)
    quiet = capsys.readouterr()
    assert quiet.out == "" and quiet.err == ""


def test_on_epoch_end_history_and_its_text(mnist_train, mnist_test):
    seen = []
    history = tiny_fit(tiny_vae(), mnist_train.images[:256], epochs=3, test_data=mnist_test.images[:128],
                       on_epoch_end=lambda h: seen.append((h, h.epochs, len(h.train["loss"]), len(h.test["loss"]))))
    assert [calls[1:] for calls in seen] == [(1, 1, 1), (2, 2, 2), (3, 3, 3)]
    assert all(h is history for h, *_ in seen)

    assert History.from_dict(history.to_dict()) == history
    assert History.from_dict(json.loads(json.dumps(history.to_dict()))) == history

    lines = str(history).splitlines()
    assert len(lines) == 3
    assert [line.split(" | ")[0] for line in lines] == ["epoch 1", "epoch 2", "epoch 3"]
    second = history.describe_epoch(1)
    assert second == lines[1]
    assert f"train neg_elbo {history.train['neg_elbo'][1]:.2f}" in second
    assert f"test rate {history.test['rate'][1]:.2f}" in second
    assert second.endswith("img/s")
    assert "loss" not in second, "with beta = 1 the loss is the -ELBO, shown once"


def test_get_device():
    device = get_device()
    assert isinstance(device, torch.device)
    assert device.type in {"cpu", "cuda", "mps"}
    assert (device.type == "cuda") == torch.cuda.is_available()


def test_get_device_prefers_cuda_then_falls_back_to_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device() == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert get_device() == torch.device("cpu")


def test_model_ends_in_eval_mode_on_the_requested_device(mnist_train):
    model = tiny_vae()
    model.train()
    tiny_fit(model, mnist_train.images[:256])
    assert not model.training
    assert all(not module.training for module in model.modules())
    assert {p.device for p in model.parameters()} == {torch.device("cpu")}
    assert model.prior_loc.device == torch.device("cpu")


def test_test_data_leaves_the_trained_weights_unchanged(mnist_train, mnist_test):
    without, with_test = tiny_vae(), tiny_vae()
    tiny_fit(without, mnist_train.images[:256], epochs=2, batch_size=64)
    tiny_fit(with_test, mnist_train.images[:256], epochs=2, batch_size=64, test_data=mnist_test.images[:128])
    assert weights_equal(without, with_test)


def test_each_epoch_is_evaluated_with_the_same_fixed_noise(mnist_train, mnist_test):
    test_images = mnist_test.images[:128]
    recomputed = []

    def evaluate_again(history: History) -> None:  # the same model, the same noise: the same numbers
        with torch.random.fork_rng():
            torch.manual_seed(7)
            recomputed.append(evaluate(model, test_images)["neg_elbo"])

    model = tiny_vae()
    history = tiny_fit(model, mnist_train.images[:256], epochs=3, seed=7, test_data=test_images,
                       on_epoch_end=evaluate_again)
    assert history.test["neg_elbo"] == pytest.approx(recomputed, rel=1e-6)


@pytest.mark.parametrize("batch_size", [16, 64])
def test_fit_reads_image_values_back_a_fixed_number_of_times(batch_size, mnist_train, mnist_test, monkeypatch):
    """The value check (one device -> host copy) runs once per dataset per fit, not once per step."""
    calls = []
    original = torch.aminmax
    monkeypatch.setattr(torch, "aminmax", lambda *args, **kwargs: calls.append(1) or original(*args, **kwargs))
    tiny_fit(tiny_vae(), mnist_train.images[:256], epochs=2, batch_size=batch_size, test_data=mnist_test.images[:64])
    assert len(calls) == 2  # the training images and the test images, whatever the number of steps
    tiny_vae().encode(mnist_test.images[:4])
    assert len(calls) == 3  # encode called directly still checks


# KL warm-up, free bits and dequantized training (notebook 09 and 08).

def test_kl_warmup_weight_rises_linearly_then_stays_at_beta():
    from vae_course.training import _kl_weight

    steps = [_kl_weight(2.0, t, warmup_steps=4) for t in range(7)]
    assert steps == [0.0, 0.5, 1.0, 1.5, 2.0, 2.0, 2.0]
    assert _kl_weight(2.0, 0, warmup_steps=0) == 2.0  # no warm-up: beta from the first step


def test_kl_warmup_lowers_the_first_epochs_loss_and_ends_at_the_elbo(mnist_train):
    data = mnist_train.images[:512]
    history = tiny_fit(tiny_vae(), data, epochs=2, kl_warmup_epochs=1)
    train = history.train
    # Epoch 1: the rate is weighted by beta_t < 1, so the loss is below -ELBO = D + R by about R / 2.
    assert train["distortion"][0] < train["loss"][0] < train["neg_elbo"][0]
    assert train["loss"][0] == pytest.approx(train["distortion"][0] + 0.5 * train["rate"][0], rel=0.05)
    # Epoch 2: beta_t = 1 throughout, so the loss is -ELBO.
    assert train["loss"][1] == pytest.approx(train["neg_elbo"][1], rel=1e-5)


def test_free_bits_charge_at_least_the_floor_for_every_dimension(mnist_train, mnist_test):
    floor = 3.0
    model = tiny_vae()
    history = tiny_fit(model, mnist_train.images[:512], free_bits=floor, test_data=mnist_test.images[:200])
    for split in (history.train, history.test):
        charged_rate = split["loss"][0] - split["distortion"][0]
        assert charged_rate >= model.latent_dim * floor - 1e-3
        assert charged_rate >= split["rate"][0] - 1e-3  # the floor only ever adds


def test_dequantized_training_sees_noisy_grey_values(mnist_train, monkeypatch):
    import vae_course.training as training

    seen = []
    objective = training._objective

    def spy(model, x, *args):
        seen.append(x.detach().clone())
        return objective(model, x, *args)

    monkeypatch.setattr(training, "_objective", spy)
    data = mnist_train.images[:256]
    tiny_fit(VAE(latent_dim=2, hidden_dims=(32,), likelihood="continuous_bernoulli"), data, dequantized=True, batch_size=256)
    x = seen[0]
    on_the_grid = torch.isclose(x * 255, torch.round(x * 255), atol=1e-4)
    assert on_the_grid.float().mean() < 0.01  # almost no value is an exact k / 255 any more
    assert 0 <= x.min() and x.max() < 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kl_warmup_epochs": -1}, "kl_warmup_epochs must be a number >= 0"),
        ({"free_bits": math.inf}, "free_bits must be a number >= 0"),
        ({"free_bits": 1.0, "loss": "kl_only"}, "change the 'elbo' loss"),
        ({"binarized": True, "dequantized": True}, "not both"),
    ],
)
def test_invalid_remedy_arguments_raise(synthetic_images, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        fit(tiny_vae(), synthetic_images, epochs=1, device="cpu", progress=False, **kwargs)


def test_a_checkpoint_written_before_the_remedies_existed_still_resumes(mnist_train, tmp_path):
    from vae_course import checkpoint

    data = mnist_train.images[:256]
    path = tmp_path / "old.pt"
    tiny_fit(tiny_vae(), data, epochs=1, checkpoint=path)
    state = checkpoint.read(path)
    settings = state["metadata"]["fit_settings"]
    for key in ("kl_warmup_epochs", "free_bits", "dequantized"):
        del settings[key]  # as an older fit wrote it
    model = tiny_vae()
    model.load_state_dict(state["state_dict"])
    checkpoint.save(model, path, overwrite=True, **state["metadata"])
    assert tiny_fit(tiny_vae(), data, epochs=2, checkpoint=path).epochs == 2


def test_iwae_loss_trains_and_is_tighter_than_the_elbo(mnist_train, mnist_test):
    history = tiny_fit(tiny_vae(), mnist_train.images[:512], loss="iwae", num_samples=5,
                       test_data=mnist_test.images[:200])
    for split in (history.train, history.test):
        assert set(split) == VAE_KEYS
        assert split["loss"][0] < split["neg_elbo"][0]  # -L_5 < -ELBO: the bound is tighter
        assert split["neg_elbo"][0] == pytest.approx(split["rate"][0] + split["distortion"][0], rel=1e-5)
    with pytest.raises(ValueError, match="num_samples is the K of loss='iwae'"):
        tiny_fit(tiny_vae(), mnist_train.images[:64], num_samples=5)
