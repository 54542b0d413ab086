"""The command line, ``python -m vae_course train ...`` (vae_course.__main__)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from PIL import Image

import vae_course.__main__ as cli
from vae_course import checkpoint
from vae_course.models import VAE, Autoencoder, ConvVAE

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GRID_WIDTH = 8 * (28 + 2) + 2  # torchvision's make_grid: 8 columns, padding 2 around every image


def grid_size(num_images: int) -> tuple[int, int]:
    rows = -(-num_images // 8)
    return GRID_WIDTH, rows * (28 + 2) + 2


def check_png(path, size) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        assert image.size == size


@pytest.fixture
def small_data(monkeypatch, mnist_train, mnist_test):
    """The CLI's real data, cut to 512 images so that the runs test the plumbing quickly.

    (Requesting the session fixtures loads the data first, so any one-time notice about it is shown there.)
    """
    real = cli.load_dataset

    def load_subset(name, split="train", root=None):
        return real(name, split, root).subset(512)

    monkeypatch.setattr(cli, "load_dataset", load_subset)


def command(out, *extra: str, epochs: int = 1, model: str = "vae") -> list[str]:
    return ["train", "--dataset", "mnist", "--model", model, "--latent-dim", "2", "--hidden-dims", "64",
            "--epochs", str(epochs), "--out", str(out), "--no-progress", "--device", "cpu", *extra]


def epoch_lines(text: str) -> list[str]:
    return [line.split(" | ")[0] for line in text.splitlines() if line.startswith("epoch ")]


def test_module_help_in_a_subprocess():
    result = subprocess.run([sys.executable, "-m", "vae_course", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "train" in result.stdout and "usage:" in result.stdout


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"]])
def test_help_exits_zero(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "usage:" in text
    if argv[0] == "train":
        for option in ("--latent-dim", "--epochs", "--out", "--model", "--no-progress"):
            assert option in text


@pytest.mark.slow
def test_train_writes_checkpoint_history_and_images(small_data, tmp_path, capsys):
    out = tmp_path / "run"
    cli.main(command(out))
    printed = capsys.readouterr().out
    assert epoch_lines(printed) == ["epoch 1"]
    assert "resuming" not in printed

    model = checkpoint.load(out / "model.pt")
    assert isinstance(model, VAE) and model.latent_dim == 2
    assert model.config["hidden_dims"] == [64]
    history = json.loads((out / "history.json").read_text())
    assert len(history["seconds"]) == 1
    assert set(history["train"]) == set(history["test"]) == {"loss", "neg_elbo", "rate", "distortion"}
    assert all(len(values) == 1 for values in history["test"].values())
    check_png(out / "reconstructions.png", grid_size(16))
    check_png(out / "samples.png", grid_size(64))


@pytest.mark.slow
def test_running_again_resumes(small_data, tmp_path, capsys):
    out = tmp_path / "run"
    cli.main(command(out))
    capsys.readouterr()

    cli.main(command(out, epochs=2))
    printed = capsys.readouterr().out
    assert "resuming" in printed
    assert epoch_lines(printed) == ["epoch 2"]
    assert len(json.loads((out / "history.json").read_text())["seconds"]) == 2
    weights = checkpoint.read(out / "model.pt")["state_dict"]

    cli.main(command(out, epochs=2))
    printed = capsys.readouterr().out
    assert "resuming" in printed
    assert epoch_lines(printed) == []
    again = checkpoint.read(out / "model.pt")["state_dict"]
    assert all(torch.equal(weights[k], again[k]) for k in weights)
    assert len(json.loads((out / "history.json").read_text())["seconds"]) == 2


@pytest.mark.slow
def test_autoencoder_has_no_samples(small_data, tmp_path, capsys):
    out = tmp_path / "ae"
    cli.main(command(out, model="ae"))
    assert epoch_lines(capsys.readouterr().out) == ["epoch 1"]
    assert isinstance(checkpoint.load(out / "model.pt"), Autoencoder)
    check_png(out / "reconstructions.png", grid_size(16))
    assert not (out / "samples.png").exists()
    assert set(json.loads((out / "history.json").read_text())["train"]) == {"loss", "distortion"}


@pytest.mark.slow
def test_conv_vae(small_data, tmp_path, capsys):
    out = tmp_path / "conv"
    cli.main(command(out, model="conv-vae"))
    assert epoch_lines(capsys.readouterr().out) == ["epoch 1"]
    model = checkpoint.load(out / "model.pt")
    assert isinstance(model, ConvVAE) and model.latent_dim == 2
    check_png(out / "reconstructions.png", grid_size(16))
    check_png(out / "samples.png", grid_size(64))


def assert_one_line_error(exit_info, capsys) -> str:
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.endswith("\n")
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and err.splitlines()[-1] == errors[0]  # one line, the last thing printed
    return errors[0]


@pytest.mark.slow
def test_other_model_in_out_dir_is_an_error(small_data, tmp_path, capsys):
    out = tmp_path / "run"
    cli.main(command(out))
    capsys.readouterr()
    before = (out / "model.pt").read_bytes()
    argv = command(out)
    argv[argv.index("--latent-dim") + 1] = "3"
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    err = assert_one_line_error(exit_info, capsys)
    assert "model.pt" in err
    assert (out / "model.pt").read_bytes() == before  # the old checkpoint is kept


def test_zero_epochs_is_an_error(small_data, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(command(tmp_path / "run", epochs=0))
    err = assert_one_line_error(exit_info, capsys)
    assert "epochs" in err
    assert not (tmp_path / "run" / "model.pt").exists()
