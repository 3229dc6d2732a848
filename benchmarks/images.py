"""Test pictures of known numbers: MNIST test digits written on white paper.

Digits are taken from the MNIST *test* set, only ones the shipped model classifies with
high confidence on their own, so a test's expected reading is known and a failure points
at the bot, not at a hard-to-read digit.
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

import cv2
import numpy as np

_MNIST_DIR: list[Path] = []


def use_mnist(directory: Path) -> None:
    """Where the MNIST test digits come from (the caller's setting: tests, `digits bench`)."""
    _MNIST_DIR[:] = [Path(directory)]
    clear_digits.cache_clear()


def mnist_dir() -> Path:
    if not _MNIST_DIR:
        raise RuntimeError("benchmarks.images.use_mnist(folder) must name MNIST's folder first")
    return _MNIST_DIR[0]


@functools.lru_cache(maxsize=1)
def clear_digits(per_class: int = 40) -> dict[int, list[np.ndarray]]:
    """Per label, MNIST test digits (white on black 28×28) the model is sure about."""
    from training.data.mnist import parse_idx
    from vision import DigitClassifier

    def read(name: str) -> np.ndarray:
        with gzip.open(mnist_dir() / name, "rb") as handle:
            return parse_idx(handle.read(), name=name)

    images = read("t10k-images-idx3-ubyte.gz")[:1500]
    labels = read("t10k-labels-idx1-ubyte.gz")[:1500]
    probs = DigitClassifier.load().classify(np.ascontiguousarray(images))
    out: dict[int, list[np.ndarray]] = {}
    for label in range(10):
        idx = np.where(labels == label)[0]
        best = idx[np.argsort(-probs[idx, label])][:per_class]
        out[label] = [images[i] for i in best]
    return out


def number_image(
    text: str,
    *,
    seed: int = 0,
    scale: int = 3,
    fmt: str = ".jpg",
) -> bytes:
    """An encoded picture of ``text`` (digits, spaces, newlines) in dark ink on white paper."""
    rng = np.random.default_rng(seed)
    digits = clear_digits()
    size = 28 * scale
    lines = text.split("\n")
    width = max(len(line) for line in lines) * (2 * size + 8) + 2 * size
    height = len(lines) * (size + size // 2) + size
    paper = np.full((height, width), 245, np.uint8)
    for row, line in enumerate(lines):
        y = size // 2 + row * (size + size // 2)
        x = size
        for char in line:
            if char == " ":
                x += 2 * size
                continue
            pool = digits[int(char)]
            glyph = pool[int(rng.integers(len(pool)))]
            glyph = cv2.resize(glyph, (size, size), interpolation=cv2.INTER_CUBIC)
            ink = glyph.astype(np.float32) / 255.0
            region = paper[y : y + size, x : x + size].astype(np.float32)
            paper[y : y + size, x : x + size] = (region * (1 - ink) + 20 * ink).astype(np.uint8)
            x += size + 8
    noise = rng.normal(0, 3, paper.shape)
    paper = np.clip(paper + noise, 0, 255).astype(np.uint8)
    return _encoded(fmt, cv2.cvtColor(paper, cv2.COLOR_GRAY2BGR))


def number_photo(text: str, *, seed: int = 0, size: tuple[int, int] = (1280, 960)) -> bytes:
    """A JPEG of ``text`` written on a sheet filling a phone photo at Telegram's size
    (1280 px on the long side): uneven light, sensor noise, the number somewhere on it."""
    rng = np.random.default_rng(seed)
    width, height = size
    strip = cv2.imdecode(
        np.frombuffer(number_image(text, seed=seed, scale=int(rng.integers(3, 5))), np.uint8),
        cv2.IMREAD_GRAYSCALE,
    )
    if strip.shape[1] > width - 80:
        factor = (width - 80) / strip.shape[1]
        strip = cv2.resize(strip, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    light = 235 - 25 * (xs / width) * (ys / height) + rng.normal(0, 2.5, (height, width))
    page = np.clip(light, 0, 255).astype(np.float32)
    y = int(rng.integers(20, height - strip.shape[0] - 19))
    x = int(rng.integers(20, width - strip.shape[1] - 19))
    ink = 1.0 - strip.astype(np.float32) / 245.0  # 0 on the strip's paper, ~1 on its ink
    region = page[y : y + strip.shape[0], x : x + strip.shape[1]]
    region[:] = region * (1 - np.clip(ink, 0, 1)) + 25 * np.clip(ink, 0, 1)
    colour = cv2.cvtColor(np.clip(page, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    return _encoded(".jpg", colour, [cv2.IMWRITE_JPEG_QUALITY, 87])


def blank_image(fmt: str = ".png") -> bytes:
    """White paper with nothing written on it."""
    paper = np.full((300, 400, 3), 240, np.uint8)
    return _encoded(fmt, paper)


def _encoded(fmt: str, image: np.ndarray, params: list[int] | None = None) -> bytes:
    ok, encoded = cv2.imencode(fmt, image, params or [])
    if not ok:
        raise ValueError(f"OpenCV cannot encode {fmt}")
    return encoded.tobytes()
