"""Shared fixtures: where the data lives. Missing data fails loudly, never skips."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def _data_dir(env: str, fallback: Path, what: str) -> Path:
    path = Path(os.environ.get(env) or fallback)
    if not path.is_dir():
        pytest.fail(f"{what} not found at {path}: set {env} to its folder", pytrace=False)
    return path


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    return _data_dir("DIGITS_MNIST_DIR", SHARED / "mnist", "MNIST")


@pytest.fixture(scope="session")
def devsets_dir() -> Path:
    return _data_dir("DIGITS_DEVSETS_DIR", SHARED / "devsets", "the devsets")


@pytest.fixture(scope="session")
def mnist(mnist_dir: Path):
    from training.mnist import load_mnist

    return load_mnist(mnist_dir, allow_download=False)
