"""Tests for vae_course.checkpoint (save / read / load) and fit's checkpoint resume."""

from __future__ import annotations

import os
import shutil
import stat

import pytest
import torch
from torch import nn

from vae_course import checkpoint
from vae_course.checkpoint import CheckpointError
from vae_course.models import VAE, Autoencoder, ConvVAE
from vae_course.training import fit

TINY_MODELS = {
    "autoencoder": lambda: Autoencoder(2, (8,)),
    "vae": lambda: VAE(latent_dim=2, hidden_dims=(8,)),
    "vae-gaussian-learned-scale": lambda: VAE(latent_dim=2, hidden_dims=(8,), likelihood="gaussian"),
    "conv-vae": lambda: ConvVAE(2),
}


def _perturbed(model: nn.Module) -> nn.Module:
    """Weights no fresh constructor gives, so a load that ignored them would be caught."""
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.25)
    return model


def _outputs(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    with torch.no_grad():
        if isinstance(model, Autoencoder):
            return [model(x)]
        posterior = model.encode(x)
        likelihood = model.decode(posterior.mean)
        return [posterior.mean, posterior.stddev, likelihood.mean, likelihood.log_prob(x)]


def _assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def _no_partial_files(directory) -> bool:
    return not [p for p in directory.iterdir() if p.name.endswith(".partial")]


# --- Round trip -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", TINY_MODELS)
def test_round_trip(kind, tmp_path, synthetic_images):
    torch.manual_seed(0)
    model = _perturbed(TINY_MODELS[kind]()).train()
    path = checkpoint.save(model, tmp_path / "model.pt", epochs=3, note="tiny", losses=[1.5, 1.25])
    loaded = checkpoint.load(path)
    assert type(loaded) is type(model)
    assert loaded.config == model.config
    assert not loaded.training
    _assert_same_weights(loaded, model)
    model.eval()
    for expected, got in zip(_outputs(model, synthetic_images), _outputs(loaded, synthetic_images), strict=True):
        assert torch.equal(expected, got)
    assert checkpoint.read(path)["metadata"] == {"epochs": 3, "note": "tiny", "losses": [1.5, 1.25]}


def test_learned_gaussian_scale_round_trips(tmp_path):
    model = VAE(latent_dim=2, hidden_dims=(8,), likelihood="gaussian")
    with torch.no_grad():
        model.log_scale.fill_(-1.5)
    loaded = checkpoint.load(checkpoint.save(model, tmp_path / "g.pt"))
    assert loaded.log_scale.item() == -1.5


# --- Atomic writes ----------------------------------------------------------------------------------


def test_save_leaves_no_partial_file(tmp_path):
    path = checkpoint.save(Autoencoder(2, (8,)), tmp_path / "ae.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["ae.pt"]
    assert path == tmp_path / "ae.pt"


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()], ids=["OSError", "KeyboardInterrupt"])
def test_interrupted_save_keeps_previous_checkpoint(error, tmp_path, monkeypatch):
    path = tmp_path / "ae.pt"
    model = Autoencoder(2, (8,))
    checkpoint.save(model, path, epoch=1)
    before = path.read_bytes()

    def broken_save(obj, file, *args, **kwargs):
        file.write(b"half a checkpoint")
        raise error

    monkeypatch.setattr(checkpoint.torch, "save", broken_save)
    with pytest.raises(type(error)):
        checkpoint.save(_perturbed(model), path, epoch=2)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert checkpoint.read(path)["metadata"] == {"epoch": 1}
    assert _no_partial_files(tmp_path)


# --- Overwrite protection ---------------------------------------------------------------------------


def test_same_model_replaces_its_checkpoint(tmp_path):
    path = tmp_path / "vae.pt"
    model = VAE(latent_dim=2, hidden_dims=(8,))
    checkpoint.save(model, path)
    checkpoint.save(_perturbed(model), path)
    _assert_same_weights(checkpoint.load(path), model)


def test_other_model_does_not_replace_checkpoint(tmp_path):
    path = tmp_path / "vae.pt"
    original = VAE(latent_dim=2, hidden_dims=(8,))
    checkpoint.save(original, path)
    with pytest.raises(FileExistsError, match="another model"):
        checkpoint.save(VAE(latent_dim=3, hidden_dims=(8,)), path)
    _assert_same_weights(checkpoint.load(path), original)
    assert checkpoint.read(path)["config"]["latent_dim"] == 2


@pytest.mark.parametrize("text", ["my precious notes\n", "hello\n"])
def test_non_checkpoint_file_is_kept(text, tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text(text)
    try:
        with pytest.raises(FileExistsError, match="overwrite=True"):
            checkpoint.save(Autoencoder(2, (8,)), path)
    finally:
        assert path.read_text() == text
    assert _no_partial_files(tmp_path)


def test_overwrite_true_replaces_anything(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("my precious notes\n")
    model = Autoencoder(2, (8,))
    checkpoint.save(model, path, overwrite=True)
    _assert_same_weights(checkpoint.load(path), model)
    other = VAE(latent_dim=2, hidden_dims=(8,))
    checkpoint.save(other, path, overwrite=True)
    assert isinstance(checkpoint.load(path), VAE)


# --- Errors -----------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "missing.pt"
    with pytest.raises(FileNotFoundError) as excinfo:
        checkpoint.load(path)
    assert str(path) in str(excinfo.value)


def _first_half_of_real_checkpoint(tmp_path) -> bytes:
    real = checkpoint.save(VAE(latent_dim=2, hidden_dims=(8,)), tmp_path / "real.pt").read_bytes()
    return real[: len(real) // 2]


@pytest.mark.parametrize("content", ["empty", "truncated", "text"])
def test_unreadable_file(content, tmp_path):
    if content == "truncated":
        data = _first_half_of_real_checkpoint(tmp_path)
    else:
        data = {"empty": b"", "text": b"this is not a checkpoint\n"}[content]
    path = tmp_path / "bad.pt"
    path.write_bytes(data)
    with pytest.raises(CheckpointError) as excinfo:
        checkpoint.load(path)
    assert str(path) in str(excinfo.value)
    assert "refused" not in str(excinfo.value)


def test_random_garbage_bytes(tmp_path):
    """Any garbage must give a CheckpointError, never a stray KeyError/IndexError/... from the unpickler."""
    path = tmp_path / "garbage.pt"
    wrong = []
    for seed in range(40):
        synthetic_garbage = torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(seed),
                                          dtype=torch.uint8)
        path.write_bytes(bytes(synthetic_garbage.tolist()))
        try:
            checkpoint.load(path)
            wrong.append((seed, "loaded"))
        except CheckpointError as exc:
            if str(path) not in str(exc):
                wrong.append((seed, f"message without the path: {exc}"))
        except Exception as exc:  # noqa: BLE001 - the point is to catch what leaks out
            wrong.append((seed, f"{type(exc).__name__}: {exc}"))
    assert not wrong, f"garbage files that gave no CheckpointError: {wrong}"


def test_bare_state_dict(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(VAE(latent_dim=2, hidden_dims=(8,)).state_dict(), path)
    with pytest.raises(CheckpointError, match="load_state_dict") as excinfo:
        checkpoint.load(path)
    assert str(path) in str(excinfo.value)


class _Malicious:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_not_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.FORMAT, "version": checkpoint.VERSION, "payload": _Malicious(marker)}, path)
    with pytest.raises(CheckpointError, match="refused") as excinfo:
        checkpoint.load(path)
    assert str(path) in str(excinfo.value)
    assert not marker.exists()


def test_unknown_model_class(tmp_path):
    path = checkpoint.save(Autoencoder(2, (8,)), tmp_path / "ae.pt")
    payload = torch.load(path, weights_only=True)
    payload["class"] = "MysteryNet"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="model_class") as excinfo:
        checkpoint.load(path)
    assert "MysteryNet" in str(excinfo.value)
    assert str(path) in str(excinfo.value)


def test_model_without_config(tmp_path):
    with pytest.raises(TypeError, match="config"):
        checkpoint.save(nn.Linear(2, 2), tmp_path / "linear.pt")
    assert list(tmp_path.iterdir()) == []


# --- fit(..., checkpoint=path) ----------------------------------------------------------------------


def _tiny_vae() -> VAE:
    torch.manual_seed(123)
    return VAE(latent_dim=2, hidden_dims=(8,))


@pytest.fixture(scope="module")
def tiny_train(mnist_train):
    return mnist_train.subset(256)


def _fit(model, data, path, epochs, **overrides):
    settings = dict(epochs=epochs, batch_size=64, progress=False, device="cpu", checkpoint=path)
    return fit(model, data, **{**settings, **overrides})


@pytest.fixture(scope="module")
def straight_run(tiny_train, tmp_path_factory):
    """Two epochs in one go: (model, history, checkpoint path)."""
    path = tmp_path_factory.mktemp("straight") / "run.pt"
    model = _tiny_vae()
    history = _fit(model, tiny_train, path, 2)
    return model, history, path


def test_resume_is_bit_identical(straight_run, tiny_train, tmp_path):
    model, history, _ = straight_run
    path = tmp_path / "run.pt"
    first = _fit(_tiny_vae(), tiny_train, path, 1)
    assert first.epochs == 1
    resumed_model = _tiny_vae()
    resumed = _fit(resumed_model, tiny_train, path, 2)
    assert resumed.epochs == 2
    _assert_same_weights(resumed_model, model)
    assert resumed.train == history.train
    assert len(resumed.train["loss"]) == 2
    _assert_same_weights(checkpoint.load(path), model)


def test_finished_run_returns_stored_history(straight_run, tiny_train):
    model, history, path = straight_run
    before = path.read_bytes()
    calls = []
    again_model = VAE(latent_dim=2, hidden_dims=(8,))  # other initial weights: they must be replaced
    again = _fit(again_model, tiny_train, path, 2, on_epoch_end=calls.append)
    assert calls == []
    assert again.to_dict() == history.to_dict()
    _assert_same_weights(again_model, model)
    assert path.read_bytes() == before


@pytest.fixture
def finished_copy(straight_run, tmp_path):
    """A copy of the finished run's checkpoint, for tests that might (wrongly) train on."""
    path = tmp_path / "copy.pt"
    shutil.copyfile(straight_run[2], path)
    return path


@pytest.mark.parametrize("change", [{"beta": 2.0}, {"lr": 3e-3}], ids=["beta", "lr"])
def test_resume_with_changed_setting_fails(change, finished_copy, tiny_train):
    path = finished_copy
    (setting,) = change
    with pytest.raises(ValueError, match=setting):
        _fit(_tiny_vae(), tiny_train, path, 3, **change)


def test_resume_with_other_model_fails(finished_copy, tiny_train):
    path = finished_copy
    with pytest.raises(ValueError, match="latent_dim"):
        _fit(VAE(latent_dim=3, hidden_dims=(8,)), tiny_train, path, 3)


def test_fit_checkpoint_loads(straight_run):
    model, history, path = straight_run
    loaded = checkpoint.load(path)
    assert isinstance(loaded, VAE) and loaded.config == model.config
    _assert_same_weights(loaded, model)
    assert checkpoint.read(path)["metadata"]["history"]["train"] == history.train


@pytest.mark.parametrize(
    "other_images",
    [lambda images: 1 - images, lambda images: images.flip(0)[:, :, :, torch.arange(27, -1, -1)]],
    ids=["inverted", "other-images-same-count"],
)
def test_resume_on_other_training_images_fails(other_images, finished_copy, tiny_train):
    images = other_images(tiny_train.images)
    assert images.shape == tiny_train.images.shape  # same number of images: the old check let these through
    with pytest.raises(ValueError, match="training images differ"):
        _fit(_tiny_vae(), images, finished_copy, 3)


def test_resume_with_a_test_set_added_or_dropped_fails(tiny_train, mnist_test, tmp_path):
    without, with_test = tmp_path / "without.pt", tmp_path / "with.pt"
    _fit(_tiny_vae(), tiny_train, without, 1)
    _fit(_tiny_vae(), tiny_train, with_test, 1, test_data=mnist_test.images[:64])
    with pytest.raises(ValueError, match="trained without test_data, now with"):
        _fit(_tiny_vae(), tiny_train, without, 2, test_data=mnist_test.images[:64])
    with pytest.raises(ValueError, match="trained with test_data, now without"):
        _fit(_tiny_vae(), tiny_train, with_test, 2)
    with pytest.raises(ValueError, match="test images differ"):
        _fit(_tiny_vae(), tiny_train, with_test, 2, test_data=mnist_test.images[64:128])


def test_fit_does_not_read_its_checkpoint_back_every_epoch(tiny_train, tmp_path, monkeypatch):
    reads = []
    original_read = checkpoint.read
    monkeypatch.setattr(checkpoint, "read", lambda path: reads.append(path) or original_read(path))
    path = tmp_path / "run.pt"
    _fit(_tiny_vae(), tiny_train, path, 3)
    assert reads == []  # a fresh run: nothing to read
    _fit(_tiny_vae(), tiny_train, path, 5)
    assert reads == [path]  # resuming reads it once, on entry


def test_save_flushes_the_file_and_its_directory_to_disk(tmp_path, monkeypatch):
    flushed = []
    original_fsync = os.fsync

    def recording_fsync(descriptor):
        flushed.append("directory" if stat.S_ISDIR(os.fstat(descriptor).st_mode) else "file")
        original_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    checkpoint.save(VAE(latent_dim=2, hidden_dims=(8,)), tmp_path / "model.pt")
    assert flushed == ["file", "directory"]


def test_atomic_write_that_fails_keeps_the_old_file(tmp_path):
    path = tmp_path / "history.json"
    checkpoint.atomic_write(path, lambda file: file.write(b'{"old": 1}'))

    def failing(file):
        file.write(b'{"new": ')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        checkpoint.atomic_write(path, failing)
    assert path.read_bytes() == b'{"old": 1}'
    assert _no_partial_files(tmp_path)


class _TemperedVAE(VAE):
    """A learner's own model: an argument that changes no weight shape must survive a checkpoint."""

    def __init__(self, latent_dim: int = 2, temperature: float = 1.0) -> None:
        super().__init__(latent_dim=latent_dim, hidden_dims=(8,))
        self.temperature = temperature


def test_config_is_every_constructor_argument_so_load_rebuilds_the_same_model(tmp_path):
    model = _TemperedVAE(temperature=0.5)
    assert model.config == {"latent_dim": 2, "temperature": 0.5}
    path = checkpoint.save(model, tmp_path / "tempered.pt")
    assert checkpoint.load(path, _TemperedVAE).temperature == 0.5
    assert VAE(3, likelihood="continuous_bernoulli").config == {
        "latent_dim": 3, "hidden_dims": [400], "likelihood": "continuous_bernoulli", "gaussian_scale": None}
    assert checkpoint.load(checkpoint.save(ConvVAE(3, "gaussian", 0.1), tmp_path / "conv.pt")).config == {
        "latent_dim": 3, "likelihood": "gaussian", "gaussian_scale": 0.1}
