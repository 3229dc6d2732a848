"""Where the tests' data lives: one lookup for MNIST and the devsets, used by every fixture.

The environment variable wins; otherwise `../shared` beside the checkout, as CI lays it.
Missing data is an error that names the folder and the variable, never a skip.
"""

from __future__ import annotations

import os
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"


class MissingData(FileNotFoundError):
    """A data folder the tests need is not there."""


def _data_dir(env: str, fallback: Path, marker: str, what: str) -> Path:
    path = Path(os.environ.get(env) or fallback)
    if not (path / marker).exists():
        raise MissingData(f"{what} not found at {path} (no {marker}): set {env} to its folder")
    return path


def mnist_dir() -> Path:
    return _data_dir("DIGITS_MNIST_DIR", SHARED / "mnist", "t10k-images-idx3-ubyte.gz", "MNIST")


def devsets_dir() -> Path:
    return _data_dir("DIGITS_DEVSETS_DIR", SHARED / "devsets", "photos/labels.csv", "the devsets")
