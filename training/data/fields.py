"""Numbers cut out of forms and tables, drawn from MNIST *train* digits, with their answers.

The reader's weakest kind of picture is a number cut from a larger page: a logbook cell,
a form field, an amount on a cheque. What surrounds the digits there is what it misreads:
the cell's wall at the crop's edge read as a "1", the walls between boxed digits read as
1s, a printed box inside a box, dots and dashes between groups read as digits, a
guilloche background read as dozens of digits. `draw_field` draws such crops, seeded,
and every one carries the true string and each digit's box, so they can both train the
segmenter's "not one digit" class (`not_digit_crops`: what the reader cuts that is no
drawn digit) and test the reader on each failure category with known answers.

Digits are MNIST *train* (never test, which the synthetic benchmark draws from, nor
USPS) in pen-like styles: European 1 with a flag and a foot, crossed 7, slant, strokes
from a fine pen to a marker. Backgrounds: plain, ruled, squared, a box around the
number, one box per digit, nested printed boxes, a crop with partial borders at its
edges, a guilloche pattern; light and shadow, blur, JPEG and low resolution.
"""

from __future__ import annotations

import logging
import multiprocessing
from dataclasses import dataclass, field

import cv2
import numpy as np
from tqdm import tqdm

from training.data.synth import (
    INK,
    INKS,
    PAPERS,
    camera_jpeg,
    digit_alpha,
    has_ink,
    uneven_light,
)

log = logging.getLogger(__name__)

BACKGROUNDS = ("plain", "ruled", "squared", "box", "cells", "nested", "edges", "guilloche")
SEPARATORS = (".", ",", "-", "/", ":")
P_ONE = 0.2  # share of digits drawn as a 1, besides MNIST's own 1s

Box = tuple[int, int, int, int, int]  # x0, y0, x1, y1, label


@dataclass
class Field:
    """One drawn crop: BGR uint8 image, the expected reading and each digit's box."""

    image: np.ndarray
    text: str
    boxes: list[Box]
    background: str
    separators: list[str] = field(default_factory=list)
    sources: list[int] = field(default_factory=list)  # pool indices of the digits, in order


# ---------------------------------------------------------------------- digit styles


def styled_digit(
    img28: np.ndarray,
    label: int,
    height: int,
    rng: np.random.Generator,
    *,
    european: float = 0.4,
    flag_reach: float = 1.0,
) -> np.ndarray:
    """One MNIST digit as pen-drawn alpha at `height` px, in a writer's style.

    European 1s (a long flag, often a foot) and crossed 7s with probability `european`;
    a slant; strokes from a fine pen to a marker. `flag_reach` > 1 lets a 1's flag reach
    that many times further left and down (some writers draw it half the digit long).
    """
    alpha = digit_alpha(img28, height, rng)
    ys, xs = np.nonzero(alpha > 0.5)
    stroke = max(1, round(_stroke(alpha)))
    if label == 1 and rng.random() < european:
        pad = round(0.35 * flag_reach * height)
        alpha = cv2.copyMakeBorder(alpha, 0, 0, pad, pad // 2, cv2.BORDER_CONSTANT, value=0)
        top = int(ys.min())
        tx = int(xs[ys == top].mean()) + pad
        flag = (
            tx - round(rng.uniform(0.2, 0.35 * flag_reach) * height),
            top + round(rng.uniform(0.2, 0.4 * flag_reach) * height),
        )
        cv2.line(alpha, (tx, top), flag, 1.0, stroke, cv2.LINE_AA)
        if rng.random() < 0.5:
            bottom = int(ys.max())
            bx = int(xs[ys == bottom].mean()) + pad
            half = round(rng.uniform(0.15, 0.25) * height)
            cv2.line(alpha, (bx - half, bottom), (bx + half, bottom), 1.0, stroke, cv2.LINE_AA)
    elif label == 7 and rng.random() < european:
        y = round(rng.uniform(0.45, 0.6) * alpha.shape[0])
        row = np.nonzero(alpha[y] > 0.5)[0]
        cx = int(row.mean()) if row.size else alpha.shape[1] // 2
        half = round(rng.uniform(0.2, 0.3) * height)
        cv2.line(alpha, (cx - half, y), (cx + half, y), 1.0, stroke, cv2.LINE_AA)
    slant = rng.normal(0.0, 0.12)
    if abs(slant) > 0.02:  # x' = x - slant * y, shifted to stay on the canvas
        h, w = alpha.shape
        m = np.float32([[1, -slant, max(0.0, slant) * h], [0, 1, 0]])
        alpha = cv2.warpAffine(alpha, m, (w + int(abs(slant) * h) + 1, h), borderValue=0)
    if rng.random() < 0.15:  # a marker
        k = max(3, round(rng.uniform(0.06, 0.12) * height)) | 1
        alpha = cv2.dilate(alpha, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    return _tight(alpha)


def _stroke(alpha: np.ndarray) -> float:
    from vision.normalize import stroke_width

    return max(1.0, float(stroke_width(alpha > 0.5)))


def _tight(alpha: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(alpha > 0.05)
    if not ys.size:
        return alpha
    return np.ascontiguousarray(alpha[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])


# ---------------------------------------------------------------------- the field


def _guilloche(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Fine interlaced sine curves, as on cheques and certificates (alpha in [0, 1])."""
    out = np.zeros((h, w), np.float32)
    xs = np.arange(w, dtype=np.float32)
    period = rng.uniform(0.1, 0.3) * max(h, 20)
    for _ in range(int(rng.integers(4, 10))):
        amp = rng.uniform(0.15, 0.5) * h
        phase = rng.uniform(0, 2 * np.pi)
        base = rng.uniform(0, h)
        ys = base + amp * np.sin(2 * np.pi * xs / (period * rng.uniform(1, 4)) + phase)
        pts = np.stack([xs, ys], axis=1).astype(np.int32)
        cv2.polylines(out, [pts], False, 1.0, 1, cv2.LINE_AA)
    return out * rng.uniform(0.3, 0.8)


def draw_field(
    rng: np.random.Generator,
    pool: tuple[np.ndarray, np.ndarray],
    *,
    background: str | None = None,
    n_digits: int | None = None,
    separators: bool | None = None,
    digit_h: int | None = None,
    labels: list[int] | None = None,
    european: float = 0.4,
    flag_reach: float = 1.0,
) -> Field:
    """A number cut from a form: 1-10 digits, sometimes in groups with separators.

    Each keyword fixes one choice (a test's failure category); None draws it at random.
    """
    images, pool_labels = pool
    bg = background or str(rng.choice(BACKGROUNDS))
    if bg not in BACKGROUNDS:
        raise ValueError(f"unknown background {bg!r}; one of {', '.join(BACKGROUNDS)}")
    n = n_digits or int(rng.integers(1, 11))
    if labels is not None:
        n = len(labels)
    dh = digit_h or int(rng.uniform(24, 56))
    # Numbers hold many 1s (dates, account numbers), the digit a wall is mistaken for.
    want = labels if labels is not None else [1 if rng.random() < P_ONE else None for _ in range(n)]
    picks = [_pick(rng, images, pool_labels, label) for label in want]
    digit_labels = [int(pool_labels[i]) for i in picks]
    alphas = [
        styled_digit(
            images[i],
            lab,
            round(dh * rng.uniform(0.85, 1.1)),
            rng,
            european=european,
            flag_reach=flag_reach,
        )
        for i, lab in zip(picks, digit_labels, strict=True)
    ]
    cells = bg in {"cells", "nested"}
    use_seps = separators if separators is not None else (n >= 4 and rng.random() < 0.35)
    use_seps = use_seps and not cells  # a separator has no cell of its own
    seps: dict[int, str] = {}
    if use_seps and n >= 2:
        group = int(rng.choice([2, 3]))
        kind = str(rng.choice(SEPARATORS))
        for i in range(n - group, 0, -group):
            seps[i] = kind
        if not seps:
            seps[max(1, n // 2)] = kind
    cell_w = max(a.shape[1] for a in alphas) + round(0.5 * dh)
    gap_lo, gap_hi = (0.05, 0.45) if not cells else (0.0, 0.0)
    pad_x = round(rng.uniform(0.3, 1.2) * dh)
    pad_y = round(rng.uniform(0.25, 0.6) * dh)
    # Lay the digits out along x.
    xs: list[int] = []
    x = pad_x
    sep_at: list[tuple[int, str]] = []
    for i, a in enumerate(alphas):
        if i in seps:
            sw = round(0.45 * dh)
            sep_at.append((x + (0 if cells else sw // 2), seps[i]))
            x += sw
        if cells:
            xs.append(x + (cell_w - a.shape[1]) // 2)
            x += cell_w
        else:
            xs.append(x)
            gap = rng.uniform(gap_lo, gap_hi) * dh
            if rng.random() < 0.1:
                gap = -rng.uniform(0.0, 0.06) * dh  # touching neighbours
            x += a.shape[1] + round(gap)
    w = x + pad_x
    h = 2 * pad_y + round(1.15 * dh)
    ink_a = np.zeros((h, w), np.float32)
    boxes: list[Box] = []
    for a, x0, lab in zip(alphas, xs, digit_labels, strict=True):
        top = pad_y + round(rng.uniform(-0.05, 0.1) * dh)
        top = int(np.clip(top, 0, h - a.shape[0]))
        region = ink_a[top : top + a.shape[0], x0 : x0 + a.shape[1]]
        np.maximum(region, a[: region.shape[0], : region.shape[1]], out=region)
        boxes.append((x0, top, x0 + a.shape[1], top + a.shape[0], lab))
    stroke = max(1, round(_stroke(alphas[0])))
    base = pad_y + round(1.05 * dh)
    for sx, kind in sep_at:
        _draw_separator(ink_a, kind, sx, pad_y, dh, base, stroke, rng)
    if rng.random() < 0.15:  # underlined
        y = min(h - 2, base + round(0.12 * dh))
        cv2.line(ink_a, (pad_x // 2, y), (w - pad_x // 2, y), 1.0, stroke, cv2.LINE_AA)
    for _ in range(int(rng.poisson(1.0))):  # specks
        cv2.circle(
            ink_a, (int(rng.integers(w)), int(rng.integers(h))), max(1, stroke // 2), 1.0, -1
        )
    # The printed background, then the pen on it.
    print_a = _printed(bg, h, w, pad_x, pad_y, dh, xs, cell_w, rng)
    paper = np.array(PAPERS[rng.integers(len(PAPERS))], np.float32) + rng.normal(0, 6, 3)
    pen = np.array(INKS[rng.integers(len(INKS))], np.float32) + rng.normal(0, 8, 3)
    printed = np.array(rng.uniform(40, 170, 3), np.float32)
    img = np.ones((h, w, 3), np.float32) * paper
    img = img * (1 - print_a[..., None]) + printed * print_a[..., None]
    a = ink_a[..., None] * rng.uniform(0.7, 1.0)
    img = img * (1 - a) + pen * a
    img = uneven_light(img, rng)
    # Cut the crop: sometimes into the frame (partial borders), sometimes beyond it.
    if bg == "edges":
        x0 = int(rng.integers(0, max(1, pad_x // 3)))
        x1 = w - int(rng.integers(0, max(1, pad_x // 3)))
        img, boxes = img[:, x0:x1], [(b[0] - x0, b[1], b[2] - x0, b[3], b[4]) for b in boxes]
    scale = 1.0
    if rng.random() < 0.3:  # low resolution: digits 14-25 px tall
        scale = min(1.0, rng.uniform(14, 25) / dh)
    if scale < 1.0:
        size = (max(8, round(img.shape[1] * scale)), max(8, round(img.shape[0] * scale)))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        boxes = [
            (
                round(b[0] * scale),
                round(b[1] * scale),
                round(b[2] * scale),
                round(b[3] * scale),
                b[4],
            )
            for b in boxes
        ]
    data = camera_jpeg(img, rng, max_blur=0.8)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    text = "".join(str(b[4]) for b in boxes)
    return Field(image, text, boxes, bg, [k for _, k in sep_at], picks)


def _pick(
    rng: np.random.Generator, images: np.ndarray, labels: np.ndarray, label: int | None
) -> int:
    """A random pool index (of `label` when given) whose digit has ink to draw.

    A blank image (a pool may hold one) is drawn again among the inked ones only; MNIST
    has none, so its draws, and every field seeded before, stay the same.
    """
    idx = np.arange(len(images)) if label is None else np.flatnonzero(labels == label)
    if not idx.size:
        raise ValueError(f"the pool holds no digit {label}")
    i = int(idx[rng.integers(len(idx))])
    if has_ink(images[i]):
        return i
    idx = idx[images[idx].reshape(len(idx), -1).max(1) > INK]
    if not idx.size:
        raise ValueError(f"the pool's digits{'' if label is None else f' {label}'} hold no ink")
    return int(idx[rng.integers(len(idx))])


def _draw_separator(
    ink: np.ndarray, kind: str, x: int, top: int, dh: int, base: int, stroke: int, rng
) -> None:
    """A pen's `. , - / :` between two groups of digits (its centre at `x`)."""
    r = max(1, round(stroke * rng.uniform(0.6, 1.2)))
    if kind == ".":
        cv2.circle(ink, (x, base - r), r, 1.0, -1, cv2.LINE_AA)
    elif kind == ",":
        cv2.line(ink, (x + r, base - r), (x - r, base + round(0.2 * dh)), 1.0, stroke, cv2.LINE_AA)
    elif kind == "-":
        y = top + round(0.55 * dh)
        half = round(rng.uniform(0.12, 0.22) * dh)
        cv2.line(ink, (x - half, y), (x + half, y), 1.0, stroke, cv2.LINE_AA)
    elif kind == "/":
        half = round(0.18 * dh)
        cv2.line(ink, (x + half, top), (x - half, base), 1.0, stroke, cv2.LINE_AA)
    else:  # ":"
        for y in (top + round(0.35 * dh), top + round(0.8 * dh)):
            cv2.circle(ink, (x, y), r, 1.0, -1, cv2.LINE_AA)


def _printed(
    bg: str,
    h: int,
    w: int,
    pad_x: int,
    pad_y: int,
    dh: int,
    xs: list[int],
    cell_w: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """The form's printed lines as alpha in [0, 1]."""
    out = np.zeros((h, w), np.float32)
    t = int(rng.integers(1, 4))
    if bg == "ruled":
        y = pad_y + round(rng.uniform(1.0, 1.2) * dh)
        out[min(h - t, y) : min(h, y + t)] = 1
    elif bg == "squared":
        step = max(10, round(dh * rng.uniform(0.5, 1.1)))
        off = int(rng.integers(0, step))
        out[off::step] = 1
        out[:, off::step] = 1
        out *= rng.uniform(0.25, 0.6)
    elif bg in {"box", "edges"}:
        x0 = int(rng.integers(1, max(2, pad_x // 2)))
        y0 = int(rng.integers(1, max(2, pad_y // 2)))
        x1 = w - int(rng.integers(1, max(2, pad_x // 2)))
        y1 = h - int(rng.integers(1, max(2, pad_y // 2)))
        cv2.rectangle(out, (x0, y0), (x1, y1), 1.0, t)
        if bg == "edges" and rng.random() < 0.5:  # the next cell's walls, cut by the crop
            out[:, : max(1, x0 - 2)] = 0
            out[y0 : y0 + t, :] = 1
            out[y1 : y1 + t, :] = 1
        if rng.random() < 0.4:  # dashed guide marks
            dash = out[y0 : y0 + t].copy()
            dash[:, (np.arange(w) // max(3, dh // 4)) % 2 == 0] = 0
            out[y0 : y0 + t] = dash
    elif bg in {"cells", "nested"}:
        left = pad_x
        y0, y1 = pad_y - round(0.15 * dh), pad_y + round(1.25 * dh)
        y0, y1 = max(0, y0), min(h - 1, y1)
        walls = [left + i * cell_w for i in range(len(xs) + 1)]
        cv2.rectangle(out, (walls[0], y0), (walls[-1], y1), 1.0, t)
        thick = t + int(rng.integers(0, 3)) if bg == "cells" else t
        for wx in walls[1:-1]:
            out[y0:y1, wx : wx + thick] = 1
        if bg == "nested":
            out *= rng.uniform(0.4, 0.8)
            for wx in walls[:-1]:
                ix0, ix1 = wx + round(0.12 * cell_w), wx + round(0.88 * cell_w)
                iy0, iy1 = y0 + round(0.1 * dh), y1 - round(0.1 * dh)
                cv2.rectangle(out, (ix0, iy0), (ix1, iy1), float(rng.uniform(0.3, 0.6)), 1)
    elif bg == "guilloche":
        out = _guilloche(h, w, rng)
    return out


# ---------------------------------------------------------------------- training crops


def junk_boxes(
    found: list[tuple[int, int, int, int]], drawn: list[Box], max_digit: float = 0.2
) -> list[int]:
    """Indices of found boxes (x, y, w, h) mostly outside every drawn digit: not a digit.

    A box counts as junk when at most `max_digit` of its area lies in drawn digits' boxes
    (a wall, a separator, a speck, texture); half digits and pairs are left out.
    """
    out = []
    for i, (x, y, w, h) in enumerate(found):
        area = max(1, w * h)
        inside = sum(
            max(0, min(x + w, d[2]) - max(x, d[0])) * max(0, min(y + h, d[3]) - max(y, d[1]))
            for d in drawn
        )
        if inside <= max_digit * area:
            out.append(i)
    return out


def _work(job: tuple[int, int]) -> tuple[list[np.ndarray], list[tuple[np.ndarray, int]]]:
    """Draw one field, read it; (junk crops, matched digit crops)."""
    from training.data.reader_crops import match_crops, worker_reader

    index, seed = job
    reader, pool = worker_reader()
    f = draw_field(np.random.default_rng([seed, index, 2]), pool)
    digits = reader.read(f.image).digits
    junk = [digits[i].crop for i in junk_boxes([d.box for d in digits], f.boxes)]
    good = match_crops([(d.box, d.crop) for d in digits], [tuple(map(float, b)) for b in f.boxes])
    return junk, good


def not_digit_crops(
    mnist_train: tuple[np.ndarray, np.ndarray],
    fields: int,
    seed: int = 0,
    segmenter: str | None = None,
    workers: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the reader cuts from `fields` drawn fields: (junk crops, digit crops, labels).

    The junk crops are the shapes it reads as digits that are none (walls, separators,
    specks, texture): training data for the segmenter's "not one digit" class. The digit
    crops are its cuts that match one drawn digit, with the drawn label.
    """
    junk: list[np.ndarray] = []
    good: list[np.ndarray] = []
    labels: list[int] = []
    ctx = multiprocessing.get_context("spawn")
    jobs = [(i, seed) for i in range(fields)]
    from training.data.reader_crops import init_worker

    start = (mnist_train, None, segmenter)
    with ctx.Pool(max(1, workers), init_worker, start) as pool:
        for j, g in tqdm(pool.imap(_work, jobs, chunksize=8), total=fields, desc="fields"):
            junk.extend(j)
            good.extend(c for c, _ in g)
            labels.extend(lab for _, lab in g)
    empty = np.zeros((0, 28, 28), np.uint8)
    return (
        np.stack(junk).astype(np.uint8) if junk else empty,
        np.stack(good).astype(np.uint8) if good else empty,
        np.array(labels, np.int64),
    )
