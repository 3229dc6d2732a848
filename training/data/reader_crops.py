"""Training crops as the reader cuts them: MNIST *train* digits drawn into photos, then read.

A model trained on MNIST alone sees centred, evenly stroked digits; the reader hands it
crops cut from photos (blur, JPEG, uneven light, thin pens, a lost stroke end). Here
MNIST train digits are drawn into synthetic photos (the paper, light and pen of
`training.data.synth`) and into small form cells (a number 12-40 px tall, often in a box),
the reader reads each photo, and every digit it finds that matches one drawn digit by box
overlap becomes a training crop with the drawn digit's label. Crops that cover a
neighbour or only part of their digit are skipped, so no compound shape is taught as one
digit. MNIST *test* digits, which the synthetic benchmark draws from, are never used.
"""

from __future__ import annotations

import logging
import multiprocessing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from training.data.synth import (
    INKS,
    PAPERS,
    SIZES,
    camera_jpeg,
    digit_alpha,
    paper_texture,
    uneven_light,
)

log = logging.getLogger(__name__)

# A read digit becomes a crop when its box overlaps one drawn digit this much (IoU) ...
MIN_IOU = 0.7
# ... and covers at most this share of any other drawn digit's box.
MAX_NEIGHBOUR = 0.15

Box = tuple[float, float, float, float, int]  # x0, y0, x1, y1, label


@dataclass
class CropSet:
    """uint8 [N, 28, 28] crops with their labels, and how many drawn digits they came from."""

    images: np.ndarray
    labels: np.ndarray
    drawn: int

    def save(self, path: Path) -> None:
        """Write atomically (a temporary file renamed into place)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, images=self.images, labels=self.labels, drawn=self.drawn)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> CropSet:
        with np.load(path) as z:
            images, labels = z["images"], z["labels"]
            drawn = int(z["drawn"])
        if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) != len(labels):
            raise ValueError(f"{path}: not a crop set (expected images [N, 28, 28] and labels)")
        return cls(images.astype(np.uint8), labels.astype(np.int64), drawn)


def draw_page(
    rng: np.random.Generator, pool: tuple[np.ndarray, np.ndarray]
) -> tuple[bytes, list[Box]]:
    """A photo of 1-3 lines of well-spaced digits (JPEG bytes) and each digit's box."""
    images, labels = pool
    w, h = SIZES[rng.integers(len(SIZES))]
    n_lines = int(rng.choice([1, 2, 3]))
    digit_h = max(24, int(rng.uniform(0.05, 0.25 if n_lines == 1 else 0.16) * h))
    paper = paper_texture(w, h, digit_h, rng)
    ink = np.array(INKS[rng.integers(len(INKS))], np.float32) + rng.normal(0, 8, 3)
    canvas = np.zeros((h, w), np.float32)
    boxes: list[Box] = []
    y = rng.uniform(0.08, 0.2) * h
    for _ in range(n_lines):
        if y + 1.1 * digit_h > 0.92 * h:
            break
        x = 0.06 * w + rng.uniform(0, 0.1) * w
        while True:
            idx = int(rng.integers(len(images)))
            alpha = digit_alpha(images[idx], int(digit_h * rng.uniform(0.85, 1.1)), rng)
            ah, aw = alpha.shape
            if x + aw > 0.94 * w:
                break
            top = int(y + rng.uniform(-0.06, 0.06) * digit_h)
            region = canvas[top : top + ah, int(x) : int(x) + aw]
            np.maximum(region, alpha[: region.shape[0], : region.shape[1]], out=region)
            boxes.append((int(x), top, int(x) + aw, top + ah, int(labels[idx])))
            x += aw + rng.uniform(0.15, 0.5) * digit_h  # never touching
            if rng.random() < 0.15:
                x += rng.uniform(1.0, 2.0) * digit_h  # the next number
        y += digit_h * rng.uniform(1.5, 2.0)
    a = canvas[..., None] * rng.uniform(0.75, 1.0)
    img = uneven_light(paper * (1 - a) + ink * a, rng)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-4, 4), 1.0)
    img = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
    turned: list[Box] = []
    for x0, y0, x1, y1, label in boxes:
        corners = np.array([[x0, y0, 1], [x1, y0, 1], [x1, y1, 1], [x0, y1, 1]], np.float32)
        pts = corners @ m.T
        turned.append((pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max(), label))
    return camera_jpeg(img, rng, max_blur=1.3), turned


def draw_cell(
    rng: np.random.Generator, pool: tuple[np.ndarray, np.ndarray]
) -> tuple[bytes, list[Box]]:
    """A small form cell: one number of 1-6 digits, 12-40 px tall, often inside a box."""
    images, labels = pool
    digit_h = int(rng.uniform(12, 40))
    alphas, digit_labels = [], []
    for _ in range(int(rng.integers(1, 7))):
        idx = int(rng.integers(len(images)))
        alphas.append(digit_alpha(images[idx], int(digit_h * rng.uniform(0.85, 1.1)), rng))
        digit_labels.append(int(labels[idx]))
    pad_x, pad_y = int(rng.uniform(0.3, 1.0) * digit_h), int(rng.uniform(0.2, 0.6) * digit_h)
    gaps = [int(rng.uniform(0.1, 0.45) * digit_h) for _ in alphas]
    w = 2 * pad_x + sum(a.shape[1] for a in alphas) + sum(gaps[:-1])
    h = 2 * pad_y + int(1.15 * digit_h)
    canvas = np.zeros((h, w), np.float32)
    boxes: list[Box] = []
    x = pad_x
    for alpha, label, gap in zip(alphas, digit_labels, gaps, strict=True):
        top = int(pad_y + rng.uniform(0, 0.1) * digit_h)
        region = canvas[top : top + alpha.shape[0], x : x + alpha.shape[1]]
        np.maximum(region, alpha[: region.shape[0], : region.shape[1]], out=region)
        boxes.append((x, top, x + alpha.shape[1], top + alpha.shape[0], label))
        x += alpha.shape[1] + gap
    paper = np.array(PAPERS[rng.integers(len(PAPERS))], np.float32) + rng.normal(0, 6, 3)
    ink = np.array(INKS[rng.integers(len(INKS))], np.float32) + rng.normal(0, 8, 3)
    a = canvas[..., None] * rng.uniform(0.6, 1.0)
    img = np.ones((h, w, 3), np.float32) * paper * (1 - a) + ink * a
    if rng.random() < 0.5:  # the cell's box
        inset = rng.integers(0, 3, 4)
        colour = tuple(float(v) for v in rng.uniform(60, 160, 3))
        corner2 = (int(w - 1 - inset[2]), int(h - 1 - inset[3]))
        cv2.rectangle(img, (int(inset[0]), int(inset[1])), corner2, colour, int(rng.integers(1, 3)))
    return camera_jpeg(img, rng, max_blur=1.0), boxes


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    inter = _intersection(a, b)
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    return inter / max(1e-9, area_a + area_b - inter)


def _intersection(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def match_crops(
    found: list[tuple[tuple[int, int, int, int], np.ndarray]], drawn: list[Box]
) -> list[tuple[np.ndarray, int]]:
    """(crop, label) for each found (box x, y, w, h; crop) that is one whole drawn digit."""
    out = []
    for (x, y, w, h), crop in found:
        box = (x, y, x + w, y + h)
        best = max(drawn, key=lambda d: _iou(box, d), default=None)
        if best is None or _iou(box, best) < MIN_IOU:
            continue  # part of a digit, or a shape that is not one
        neighbour = max(
            (
                _intersection(box, d) / max(1e-9, (d[2] - d[0]) * (d[3] - d[1]))
                for d in drawn
                if d is not best
            ),
            default=0.0,
        )
        if neighbour <= MAX_NEIGHBOUR:
            out.append((crop, best[4]))
    return out


_READER = None
_POOL: tuple[np.ndarray, np.ndarray] | None = None


def init_worker(
    pool: tuple[np.ndarray, np.ndarray], model: str | None = None, segmenter: str | None = None
) -> None:
    """Load the reader once per worker process (one thread: the workers share the cores)."""
    global _READER, _POOL
    import torch

    from vision import DigitReader

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    kwargs = {"segmenter": segmenter} if segmenter else {}
    _READER, _POOL = DigitReader.load(model, **kwargs), pool


def worker_reader() -> tuple[Any, tuple[np.ndarray, np.ndarray]]:
    """(the reader, the digit pool) of a worker process started with `init_worker`."""
    if _READER is None or _POOL is None:
        raise RuntimeError("this runs only in a pool started with init_worker")
    return _READER, _POOL


def _work(job: tuple[int, int, str]) -> tuple[list[tuple[np.ndarray, int]], int]:
    """Draw one photo, read it, keep the matching crops (runs in a worker process)."""
    index, seed, kind = job
    reader, pool = worker_reader()
    rng = np.random.default_rng([seed, index, 0 if kind == "page" else 1])
    data, drawn = (draw_page if kind == "page" else draw_cell)(rng, pool)
    found = [(d.box, d.crop) for d in reader.read(data).digits]
    return match_crops(found, drawn), len(drawn)


def make_crops(
    mnist_train: tuple[np.ndarray, np.ndarray],
    pages: int,
    cells: int,
    seed: int = 0,
    model: str | None = None,
    workers: int = 1,
) -> CropSet:
    """Crops from `pages` synthetic photos and `cells` form cells, read by the reader."""
    jobs = [(i, seed, "page") for i in range(pages)] + [(i, seed, "cell") for i in range(cells)]
    crops: list[np.ndarray] = []
    labels: list[int] = []
    drawn = 0
    ctx = multiprocessing.get_context("spawn")  # torch and OpenCV threads do not survive fork
    with ctx.Pool(max(1, workers), init_worker, (mnist_train, model)) as pool:
        results = pool.imap(_work, jobs, chunksize=8)
        for kept, n in tqdm(results, total=len(jobs), desc="reader crops", unit="photo"):
            crops.extend(c for c, _ in kept)
            labels.extend(label for _, label in kept)
            drawn += n
    if not crops:
        raise RuntimeError("the reader found no digit that matched a drawn one")
    return CropSet(np.stack(crops).astype(np.uint8), np.array(labels, np.int64), drawn)
