"""Two touching digits as one shape: the segmenter's "not one digit" class.

A "14" written with the 1 touching the 4 is hardly wider than a 4, and an MNIST-only
model reads the squeezed pair as a confident 4, so the reader's split search keeps the
shape whole. Trained with these shapes as an eleventh class, the segmenter gives such a
shape little confidence as any one digit, and the cut pieces win.

The pairs are drawn as the benchmark and the reader see them: pen-width MNIST *train*
digits, half of the pairs with a 1 (the narrow digit that hides), touching or
overlapping by up to 7 % of the height, cut out as one component and normalised by the
reader's own `normalize_digit`.
"""

from __future__ import annotations

import cv2
import numpy as np
from tqdm import tqdm

from training.data.synth import digit_alpha
from vision.model import DIGIT_CLASSES
from vision.normalize import normalize_digit

# The label of a touching pair in an 11-class model.
MULTI_LABEL = DIGIT_CLASSES
P_WITH_ONE = 0.5
MAX_OVERLAP = 0.07  # of the digit height
MAX_OFFSET = 0.08  # vertical, of the digit height


def draw_pair(first: np.ndarray, second: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """Two 28×28 digits side by side, touching: the pair's normalised crop, or None.

    None when the two strokes do not form one connected shape (the reader would see two
    components and never ask whether the shape holds two digits).
    """
    height = int(rng.integers(24, 72))
    alphas = [
        digit_alpha(img, max(8, round(height * rng.uniform(0.85, 1.1))), rng)
        for img in (first, second)
    ]
    overlap = rng.uniform(0.0, MAX_OVERLAP) * height
    pad = round(MAX_OFFSET * height) + 2
    canvas = np.zeros(
        (max(a.shape[0] for a in alphas) + 2 * pad, sum(a.shape[1] for a in alphas) + 4),
        np.float32,
    )
    x = 2
    for alpha in alphas:
        y = pad + round(rng.uniform(-MAX_OFFSET, MAX_OFFSET) * height)
        region = canvas[y : y + alpha.shape[0], x : x + alpha.shape[1]]
        np.maximum(region, alpha, out=region)
        x += alpha.shape[1] - round(overlap)
    count, _ = cv2.connectedComponents((canvas > 0.4).astype(np.uint8))
    if count != 2:
        return None
    return normalize_digit(canvas)


def touching_pairs(
    images: np.ndarray, labels: np.ndarray, n: int, seed: int, *, progress: bool = True
) -> np.ndarray:
    """`n` normalised crops of two touching digits drawn from `images` (uint8 [n, 28, 28])."""
    if n <= 0:
        return np.zeros((0, 28, 28), np.uint8)
    rng = np.random.default_rng(seed)
    ones = np.flatnonzero(np.asarray(labels) == 1)
    if len(ones) == 0:
        raise ValueError("touching pairs need some 1s among the digits")
    out = np.empty((n, 28, 28), np.uint8)
    made = 0
    with tqdm(total=n, desc="touching pairs", unit="pair", disable=not progress) as bar:
        while made < n:
            a, b = rng.integers(len(images), size=2)
            if rng.random() < P_WITH_ONE:
                a = ones[rng.integers(len(ones))]
                if rng.random() < 0.5:
                    a, b = b, a
            crop = draw_pair(images[a], images[b], rng)
            if crop is None:
                continue
            out[made] = crop
            made += 1
            bar.update()
    return out
