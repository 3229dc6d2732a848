"""Bands of one line of digits with their text: the line model's training data.

Two kinds, both from MNIST *train* digits: numbers cut from forms (`training.data.fields`:
walls, boxes, guilloche, separators, European styles, low resolution), re-cut tight or
loose as a reader or a user would cut them, and lines of numbers on photographed paper
(`training.data.synth`'s paper, pens, light, blur and JPEG). Each band is stored resized
to the model's height (`vision.line_model.resize_line`), so training reads exactly what
the reader hands over.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import cv2
import numpy as np
from tqdm import tqdm

from training.data.fields import Box, Field, draw_field
from training.data.synth import INKS, camera_jpeg, digit_alpha, paper_texture, uneven_light
from vision.classifier import SEGMENTER_MODEL_PATH, DigitClassifier
from vision.fit_lines import band_boxes
from vision.line_model import LINE_HEIGHT, LINE_STRIDE, resize_line
from vision.segment import Scorer, segment

Pool = tuple[np.ndarray, np.ndarray]
T = TypeVar("T")
# European 1s in the line model's fields may have flags up to 1.7 times as long as the
# form-field benchmark draws (0.6 of the digit's height across, 0.7 down): read beside
# the next digit, a long flag must stay part of its 1, not become a 1 of its own.
LINE_FLAG_REACH = 1.7
# A line of a drawn field whose band holds at most this share of each digit's box holds
# none of its digits (`empty_bands`).
EMPTY_OVERLAP = 0.15


@dataclass
class LineSet:
    """Resized grey bands (uint8 [LINE_HEIGHT, W_i]) and their digit strings."""

    bands: list[np.ndarray]
    texts: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def save(self, path: str) -> None:
        widths = np.array([b.shape[1] for b in self.bands], np.int32)
        flat = np.concatenate(self.bands, axis=1) if self.bands else np.zeros((LINE_HEIGHT, 0))
        np.savez_compressed(
            path, flat=flat.astype(np.uint8), widths=widths, texts=np.array(self.texts)
        )

    @classmethod
    def load(cls, path: str) -> LineSet:
        with np.load(path) as data:
            flat, widths, texts = data["flat"], data["widths"], data["texts"]
        ends = np.cumsum(widths)
        return cls(
            [flat[:, e - w : e] for e, w in zip(ends, widths, strict=True)],
            [str(t) for t in texts],
        )

    def __add__(self, other: LineSet) -> LineSet:
        return LineSet(self.bands + other.bands, self.texts + other.texts)


def recut(image: np.ndarray, boxes: list[Box], rng: np.random.Generator) -> np.ndarray:
    """A field cut again as a reader or a user would: margins, a neighbour's rule, a tilt."""
    h, w = image.shape[:2]
    if boxes and rng.random() < 0.5:
        x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
        x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
        dh = max(4, y1 - y0)
        m = [round(rng.uniform(-0.05, 0.6) * dh) for _ in range(4)]
        cy0, cy1 = max(0, y0 - m[0]), min(h, y1 + m[1])
        cx0, cx1 = max(0, x0 - m[2]), min(w, x1 + m[3])
        if cy1 - cy0 >= 6 and cx1 - cx0 >= 6:
            image = image[cy0:cy1, cx0:cx1]
    if rng.random() < 0.2:  # a table's rule just above or below, from the crop's neighbours
        image = image.copy()
        hh = image.shape[0]
        reach = int(rng.integers(0, max(1, hh // 6)))
        y = reach if rng.random() < 0.5 else hh - 1 - reach
        t = int(rng.integers(1, 3))
        rows = image[max(0, y - t + 1) : y + 1]
        image[max(0, y - t + 1) : y + 1] = (rows * rng.uniform(0.2, 0.6)).astype(np.uint8)
    if rng.random() < 0.2:
        hh, ww = image.shape[:2]
        m2 = cv2.getRotationMatrix2D((ww / 2, hh / 2), rng.uniform(-4, 4), 1.0)
        image = cv2.warpAffine(image, m2, (ww, hh), borderMode=cv2.BORDER_REPLICATE)
    return image


def photo_line(rng: np.random.Generator, pool: Pool) -> tuple[np.ndarray, str]:
    """One line of 1-3 numbers on photographed paper, in a band as the reader cuts it."""
    images, labels = pool
    dh = int(rng.uniform(18, 60))
    alphas: list[np.ndarray] = []
    xs: list[int] = []
    text = ""
    x = 0.0
    for k in range(int(rng.choice([1, 1, 2, 3]))):
        if k:
            x += rng.uniform(1.2, 2.6) * dh
        for _ in range(int(rng.integers(1, 9))):
            idx = int(rng.integers(len(images)))
            alpha = digit_alpha(images[idx], int(dh * rng.uniform(0.85, 1.1)), rng)
            touching = rng.random() < 0.08
            alphas.append(alpha)
            xs.append(int(x))
            text += str(int(labels[idx]))
            gap = rng.uniform(-0.06, 0.0) if touching else rng.uniform(0.08, 0.4)
            x += alpha.shape[1] + gap * dh
    mx, my = rng.uniform(0.3, 0.9) * dh, rng.uniform(0.2, 0.5) * dh
    w, h = int(x + 2 * mx) + 1, int(1.2 * dh + 2 * my)
    canvas = np.zeros((h, w), np.float32)
    slope = np.tan(np.deg2rad(rng.uniform(-3, 3)))
    for alpha, x0 in zip(alphas, xs, strict=True):
        y0 = int(np.clip(my + rng.uniform(-0.06, 0.06) * dh + x0 * slope, 0, h - alpha.shape[0]))
        left = int(mx) + x0
        region = canvas[y0 : y0 + alpha.shape[0], left : left + alpha.shape[1]]
        np.maximum(region, alpha[: region.shape[0], : region.shape[1]], out=region)
    paper = paper_texture(w, h, dh, rng)
    ink = np.array(INKS[rng.integers(len(INKS))], np.float32) + rng.normal(0, 8, 3)
    a = canvas[..., None] * rng.uniform(0.75, 1.0)
    img = uneven_light(paper * (1 - a) + ink * a, rng)
    data = camera_jpeg(img, rng, max_blur=1.3)
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), text


@dataclass(frozen=True)
class FieldKinds:
    """Which form fields the bands hold (`draw_field`'s choices): all of them by default.

    Narrowed, a line model can be trained with a condition held out (the learning loop's
    benchmark holds out guilloche, separators and European styles).
    """

    backgrounds: tuple[str, ...] | None = None  # None: every background
    separators: bool = True  # False: never a separator between groups
    european: float = 0.4  # share of 1s and 7s drawn European

    def draw(self, rng: np.random.Generator, pool: Pool) -> Field:
        """One form field of these kinds."""
        return draw_field(
            rng,
            pool,
            background=str(rng.choice(self.backgrounds)) if self.backgrounds else None,
            separators=None if self.separators else False,
            european=self.european,
            flag_reach=LINE_FLAG_REACH,
        )


def draw_band(
    rng: np.random.Generator, pool: Pool, photo_share: float, kinds: FieldKinds = FieldKinds()
) -> tuple[np.ndarray, str]:
    """One training band, resized for the model, and its text."""
    if rng.random() < photo_share:
        image, text = photo_line(rng, pool)
    else:
        field = kinds.draw(rng, pool)
        image, text = recut(field.image, field.boxes, rng), field.text
    return ctc_band(image, text), text


def jitter_band(band: np.ndarray, text: str, rng: np.random.Generator) -> np.ndarray:
    """Another cut of a resized band: margins trimmed, stretched, lighter or darker.

    Fine-tuning repeats users' few bands many times; each repeat is cut a little
    differently, as another picture of the same number would be."""
    h, w = band.shape
    top, bottom = (int(rng.integers(0, max(1, h // 8))) for _ in range(2))
    left, right = (int(rng.integers(0, max(1, min(h // 2, w // 8)))) for _ in range(2))
    out = band[top : h - bottom, left : w - right]
    width = max(1, round(out.shape[1] * LINE_HEIGHT / out.shape[0] * rng.uniform(0.85, 1.15)))
    out = cv2.resize(out, (width, LINE_HEIGHT), interpolation=cv2.INTER_AREA)
    gain, offset = rng.uniform(0.8, 1.2), rng.uniform(-20, 20)
    out = np.clip(out.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)
    return ctc_band(out, text)


def ctc_band(image: np.ndarray, text: str) -> np.ndarray:
    """A band resized to the model's height, and widened where CTC could not place `text`
    in it (a frame per digit and one between repeats)."""
    band = resize_line(image)
    need = LINE_STRIDE * (2 * len(text) + 2)
    if band.shape[1] < need:
        band = cv2.resize(band, (need, LINE_HEIGHT))
    return band


def empty_bands(field: Field, scorer: Scorer) -> list[np.ndarray]:
    """Bands the reader cuts around lines of `field` that hold none of its digits (each
    digit's box at most `EMPTY_OVERLAP` inside): texture, a rule or a box's edge chained
    into a line of its own. Labelled "", they teach the line model to read it as nothing,
    so the reader drops that line's shapes."""
    seg = segment(field.image, scorer)
    out = []
    for x0, y0, x1, y1 in band_boxes(seg, field.image.shape):
        inside = [_share_inside(b, (x0, y0, x1, y1)) for b in field.boxes]
        if max(inside, default=0.0) <= EMPTY_OVERLAP:
            out.append(ctc_band(field.image[y0:y1, x0:x1], ""))
    return out


def _share_inside(box: Box, band: tuple[int, int, int, int]) -> float:
    w = max(0, min(box[2], band[2]) - max(box[0], band[0]))
    h = max(0, min(box[3], band[3]) - max(box[1], band[1]))
    return w * h / max(1, (box[2] - box[0]) * (box[3] - box[1]))


_POOL: Pool | None = None
_SCORER: Scorer | None = None


def _init(pool: Pool) -> None:
    global _POOL
    _POOL = pool


def _draw(job: tuple[int, int, float, FieldKinds]) -> tuple[np.ndarray, str]:
    index, seed, photo_share, kinds = job
    assert _POOL is not None
    return draw_band(np.random.default_rng([seed, index, 7]), _POOL, photo_share, kinds)


def _init_empty(pool: Pool) -> None:
    global _POOL, _SCORER
    _POOL = pool
    _SCORER = DigitClassifier.load(SEGMENTER_MODEL_PATH, threads=1).classify


def _draw_empty(job: tuple[int, int, FieldKinds]) -> list[np.ndarray]:
    index, seed, kinds = job
    assert _POOL is not None and _SCORER is not None
    field = kinds.draw(np.random.default_rng([seed, index, 11]), _POOL)
    return empty_bands(field, _SCORER)


def draw_empty_lines(
    pool: Pool, fields: int, seed: int, *, kinds: FieldKinds = FieldKinds(), workers: int = 1
) -> LineSet:
    """The empty bands (`empty_bands`) of `fields` seeded form fields of `kinds`, as the
    shipped segmenter cuts them."""
    jobs = [(i, seed, kinds) for i in range(fields)]
    out = _run_jobs(_draw_empty, jobs, _init_empty, pool, workers, "empty lines")
    bands = [b for found in out for b in found]
    return LineSet(bands, [""] * len(bands))


def draw_lines(
    pool: Pool,
    n: int,
    seed: int,
    *,
    photo_share: float = 1 / 3,
    kinds: FieldKinds = FieldKinds(),
    workers: int = 1,
) -> LineSet:
    """`n` seeded training bands (a share of them photo lines, the rest form fields of
    `kinds`)."""
    jobs = [(i, seed, photo_share, kinds) for i in range(n)]
    out = _run_jobs(_draw, jobs, _init, pool, workers, "lines")
    return LineSet([b for b, _ in out], [t for _, t in out])


def _run_jobs(
    work: Callable[[Any], T],
    jobs: list[Any],
    init: Callable[[Pool], None],
    pool: Pool,
    workers: int,
    desc: str,
) -> list[T]:
    """`work` over `jobs` in order: here, or in `workers` spawned processes each set up by
    `init(pool)` (a progress bar from 1,000 jobs)."""
    if workers <= 1:
        init(pool)
        return [work(j) for j in tqdm(jobs, desc=desc, disable=len(jobs) < 1000)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers, init, (pool,)) as p:
        return list(tqdm(p.imap(work, jobs, chunksize=32), total=len(jobs), desc=desc))
