"""Shared fixtures for the reader's tests: one loaded reader, MNIST test digits, dev photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def reader():
    from vision import DigitReader

    return DigitReader.load()


@pytest.fixture(scope="session")
def mnist_test(mnist):
    return mnist[1]


@pytest.fixture(scope="session")
def clear_digits(reader, mnist_test):
    """Per class, the MNIST test image the classifier is surest of (and right about).

    The shipped model is trained with label smoothing, so its top probability sits near
    0.96 rather than 1: pick the most confident correct example, not a fixed threshold.
    """
    probs = reader.classifier.classify(mnist_test.images[:2000])
    labels = mnist_test.labels[:2000].astype(int)
    out = {}
    for label in range(10):
        right = np.nonzero((labels == label) & (probs.argmax(1) == label))[0]
        best = right[np.argmax(probs[right, label])]
        assert probs[best, label] > 0.9, (label, probs[best])
        out[label] = mnist_test.images[best]
    assert len(out) == 10
    return out


def render(
    text: str,
    digits: dict[int, np.ndarray],
    *,
    height: int = 60,
    gap: float = 0.3,
    size: tuple[int, int] = (640, 480),
    paper: tuple[int, int, int] = (235, 235, 235),
    ink: tuple[int, int, int] = (30, 30, 30),
    line_gap: float = 2.0,
) -> np.ndarray:
    """Draw `text` (digits, spaces, newlines) with MNIST digits onto plain paper (BGR)."""
    w, h = size
    img = np.empty((h, w, 3), np.float32)
    img[:] = paper
    y = int(0.15 * h)
    for line in text.split("\n"):
        x = int(0.08 * w)
        for ch in line:
            if ch == " ":
                x += int(2.0 * height)
                continue
            alpha = _alpha(digits[int(ch)], height)
            ah, aw = alpha.shape
            region = img[y : y + ah, x : x + aw]
            a = alpha[: region.shape[0], : region.shape[1], None]
            region[:] = region * (1 - a) + np.array(ink, np.float32) * a
            x += aw + int(gap * height)
        y += int(line_gap * height)
    return np.clip(img, 0, 255).astype(np.uint8)


def _alpha(img28: np.ndarray, height: int) -> np.ndarray:
    ys, xs = np.nonzero(img28 > 30)
    crop = img28[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32) / 255
    ch, cw = crop.shape
    out = cv2.resize(crop, (max(2, round(cw * height / ch)), height), cv2.INTER_CUBIC)
    return np.clip((out - 0.4) * 3.0, 0, 1)
