"""Shared fixtures: where the data lives. Missing data fails loudly, never skips."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests import datadirs
from tests.datadirs import MissingData


def _found(lookup: Callable[[], Path]) -> Path:
    try:
        return lookup()
    except MissingData as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    return _found(datadirs.mnist_dir)


@pytest.fixture(scope="session")
def devsets_dir() -> Path:
    return _found(datadirs.devsets_dir)


@pytest.fixture(scope="session")
def mnist(mnist_dir: Path):
    from training.data.mnist import load_mnist

    return load_mnist(mnist_dir, allow_download=False)
