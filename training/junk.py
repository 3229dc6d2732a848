"""Fit the reader's junk filter (`vision.segment.junk`) on drawn form crops.

Each drawn field (`training.data.fields`, MNIST *train* digits) is segmented as the
reader segments it, with the shipped segmenter but no junk filter; every final candidate
mostly outside all drawn digits is junk (label 1), every one that is one whole drawn
digit is a digit (label 0), and the rest (half digits, pairs) are left out. A logistic
regression over `junk_features` is fitted to those, with an L2 penalty, by full-batch
gradient descent (a few thousand rows: seconds).
"""

from __future__ import annotations

import logging
import multiprocessing

import numpy as np
from tqdm import tqdm

from training.data.fields import Field, draw_field, junk_boxes
from training.data.reader_crops import MIN_IOU, _iou, draw_page
from vision.decode import decode_image
from vision.segment.junk import FEATURES, JunkFilter, junk_features

log = logging.getLogger(__name__)

# Every PAGE_EVERY-th sample is a synthetic photo of a page (`reader_crops.draw_page`),
# so the filter also learns what digits look like on dense, multi-line pages.
PAGE_EVERY = 3

_SCORER = None
_POOL: tuple[np.ndarray, np.ndarray] | None = None


def _init(pool: tuple[np.ndarray, np.ndarray], segmenter: str | None) -> None:
    global _SCORER, _POOL
    import cv2
    import torch

    from vision.classifier import SEGMENTER_MODEL_PATH, DigitClassifier

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    _SCORER, _POOL = DigitClassifier.load(segmenter or SEGMENTER_MODEL_PATH).classify, pool


def field_rows(index: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(features, labels) of one drawn field's final candidates (in a worker)."""
    from vision.segment import segment

    if _SCORER is None or _POOL is None:
        raise RuntimeError("field_rows runs only after _init")
    rng = np.random.default_rng([seed, index, 3])
    if index % PAGE_EVERY == PAGE_EVERY - 1:  # a photo of a page: digits, rarely junk
        data, drawn = draw_page(rng, _POOL)
        f = Field(decode_image(data), "", [tuple(round(v) for v in b) for b in drawn], "page")
    else:
        f = draw_field(rng, _POOL)
    seg = segment(f.image, _SCORER)
    cands = seg.digits
    if len(cands) < 2:
        return np.zeros((0, len(FEATURES)), np.float32), np.zeros(0, np.int64)
    s = seg.scale
    boxes = [(c.x * s, c.y * s, c.w * s, c.h * s) for c in cands]
    junk = set(junk_boxes(boxes, f.boxes))
    feats = junk_features(cands, _working(f.image, seg), seg.ink)
    rows, labels = [], []
    for i, (x, y, w, h) in enumerate(boxes):
        if i in junk:
            rows.append(feats[i])
            labels.append(1)
        elif max(_iou((x, y, x + w, y + h), b) for b in f.boxes) >= MIN_IOU:
            rows.append(feats[i])
            labels.append(0)
    return np.array(rows, np.float32).reshape(-1, len(FEATURES)), np.array(labels, np.int64)


def _working(image: np.ndarray, seg) -> np.ndarray:
    """The image at the segmentation's working resolution (what `segment` measured)."""
    from vision.segment.resolution import working_image

    work = working_image(image)[0]
    if work.shape[:2] != seg.ink.shape:
        raise RuntimeError("the working image does not match the segmentation's")
    return work


def _job(job: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    return field_rows(*job)


def junk_dataset(
    mnist_train: tuple[np.ndarray, np.ndarray],
    fields: int,
    seed: int = 0,
    segmenter: str | None = None,
    workers: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels (1: junk) of the candidates cut from `fields` drawn fields."""
    xs, ys = [], []
    ctx = multiprocessing.get_context("spawn")
    jobs = [(i, seed) for i in range(fields)]
    with ctx.Pool(max(1, workers), _init, (mnist_train, segmenter)) as pool:
        for x, y in tqdm(pool.imap(_job, jobs, chunksize=8), total=fields, desc="fields"):
            xs.append(x)
            ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def fit_junk_filter(
    x: np.ndarray, y: np.ndarray, *, l2: float = 1e-3, steps: int = 3000, threshold: float = 0.5
) -> JunkFilter:
    """Logistic regression by gradient descent on standardised features."""
    if len(x) == 0 or len(set(y.tolist())) < 2:
        raise ValueError("the junk filter needs both junk and digit rows to fit")
    mean = x.mean(axis=0)
    scale = x.std(axis=0) + 1e-6
    z = (x - mean) / scale
    w = np.zeros(x.shape[1], np.float64)
    b = 0.0
    lr = 0.5
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w + b, -30, 30)))
        g = p - y
        w -= lr * (z.T @ g / len(y) + l2 * w)
        b -= lr * float(g.mean())
    return JunkFilter(
        w.astype(np.float32), b, mean.astype(np.float32), scale.astype(np.float32), threshold
    )
