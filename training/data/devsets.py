"""Real handwriting that is not MNIST, normalised exactly as the reader normalises digits.

- USPS (16×16, values in [-1, 1], +1 = ink): train split stands in for users' handwriting,
  test split is never trained on.
- HwD-1000 (28×28, black ink on white, drawn on a screen, not size-normalised).
"""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vision.normalize import normalize_digit


class DevsetError(RuntimeError):
    """A development set is missing or malformed."""


@dataclass(frozen=True)
class Devset:
    name: str
    images: np.ndarray  # uint8 [N, 28, 28], MNIST-normalised
    labels: np.ndarray  # uint8 [N]


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise DevsetError(
            f"{what} not found at {path}: set DIGITS_DEVSETS_DIR (or --devsets-dir) to the "
            "folder holding usps/ and hwd1000/"
        )
    return path


def normalize_many(ink_images: list[np.ndarray] | np.ndarray) -> np.ndarray:
    """Apply the reader's `normalize_digit` to each bright-ink image."""
    return (
        np.stack([normalize_digit(img) for img in ink_images])
        if len(ink_images)
        else np.zeros((0, 28, 28), np.uint8)
    )


def load_usps(devsets_dir: Path, split: str = "test") -> Devset:
    """USPS `train` or `test`, normalised like the reader's crops."""
    if split not in {"train", "test"}:
        raise ValueError("USPS split must be 'train' or 'test'")
    path = _require(Path(devsets_dir) / "usps" / f"zip.{split}.gz", f"USPS {split} split")
    with gzip.open(path, "rt") as handle:
        values = np.loadtxt(handle, dtype=np.float32)
    if values.ndim != 2 or values.shape[1] != 257:
        raise DevsetError(f"{path}: expected 257 columns (label + 16×16), got {values.shape}")
    labels = values[:, 0].astype(np.uint8)
    ink = ((values[:, 1:] + 1.0) / 2.0 * 255.0).clip(0, 255).astype(np.uint8).reshape(-1, 16, 16)
    return Devset(f"usps-{split}", normalize_many(ink), labels)


def load_hwd1000(devsets_dir: Path) -> Devset:
    """HwD-1000, inverted to white ink on black and normalised."""
    root = _require(Path(devsets_dir) / "hwd1000", "HwD-1000")
    images, labels = [], []
    with open(_require(root / "dataset.csv", "HwD-1000 dataset.csv"), newline="") as handle:
        for row in csv.DictReader(handle):
            grey = cv2.imread(str(root / row["image"]), cv2.IMREAD_GRAYSCALE)
            if grey is None:
                raise DevsetError(f"cannot read {root / row['image']}")
            images.append(255 - grey)
            labels.append(int(row["label"]))
    return Devset("hwd1000", normalize_many(images), np.array(labels, np.uint8))


def load_all(devsets_dir: Path) -> list[Devset]:
    """Every digit-level devset used for evaluation (test splits only)."""
    return [load_usps(devsets_dir, "test"), load_hwd1000(devsets_dir)]
