"""Digit candidates (a box and an ink mask) and the MNIST crops the classifier reads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import cv2
import numpy as np

from vision.normalize import normalize_digit, saturate
from vision.segment.components import components, half_width

# A scorer maps MNIST-normalised crops [N, 28, 28] to digit probabilities [N, 10]; they
# sum to less than 1 where a segmenter's "not one digit" class takes the rest.
Scorer = Callable[[np.ndarray], np.ndarray]


class SegmentationError(ValueError):
    """The image cannot be segmented as asked (e.g. into exactly N digits)."""


@dataclass
class Candidate:
    """One digit candidate in working coordinates: a bounding box and its ink mask."""

    x: int
    y: int
    w: int
    h: int
    mask: np.ndarray  # bool [h, w]
    probs: np.ndarray | None = None
    crop: np.ndarray | None = None
    line_probs: np.ndarray | None = None  # the line model's reading here (vision.fit_lines)

    @property
    def x2(self) -> int:
        return self.x + self.w

    @property
    def y2(self) -> int:
        return self.y + self.h

    @property
    def cy(self) -> float:
        return self.y + self.h / 2.0

    @property
    def cx(self) -> float:
        return self.x + self.w / 2.0

    @property
    def area(self) -> int:
        return int(self.mask.sum())

    @property
    def confidence(self) -> float:
        return float(self.probs.max()) if self.probs is not None else 0.0

    @property
    def scores(self) -> np.ndarray:
        """The class probabilities of a scored candidate."""
        if self.probs is None:
            raise SegmentationError("a candidate was used before it was scored")
        return self.probs

    @property
    def digit_crop(self) -> np.ndarray:
        """The 28×28 crop of a scored candidate."""
        if self.crop is None:
            raise SegmentationError("a candidate was used before it was cropped")
        return self.crop

    @cached_property
    def half_width(self) -> float:
        """Half the boldest stroke's width: the mask's largest distance to background."""
        return half_width(self.mask)


@dataclass
class Segmentation:
    """Digits found in one image, in reading order, with the working-to-original scale."""

    lines: list[list[list[Candidate]]]  # lines → numbers → digits
    scale: float  # original pixel = working pixel × scale
    ink: np.ndarray = field(repr=False)  # float32 working-resolution ink map
    mask: np.ndarray = field(repr=False)  # bool working-resolution cleaned ink mask
    lean: float = 0.0  # degrees the page leans counter-clockwise (0: level; see DESKEW_MIN)

    @property
    def digits(self) -> list[Candidate]:
        return [d for line in self.lines for number in line for d in number]


def candidates_from_mask(mask: np.ndarray) -> list[Candidate]:
    n, labels, stats = components(mask)
    out = []
    for i in range(1, n):
        x, y, w, h, _ = (int(v) for v in stats[i])
        out.append(Candidate(x, y, w, h, labels[y : y + h, x : x + w] == i))
    return out


def merge(a: Candidate, b: Candidate) -> Candidate:
    """The union of two candidates."""
    x, y = min(a.x, b.x), min(a.y, b.y)
    x2, y2 = max(a.x2, b.x2), max(a.y2, b.y2)
    m = np.zeros((y2 - y, x2 - x), bool)
    m[a.y - y : a.y2 - y, a.x - x : a.x2 - x] |= a.mask
    m[b.y - y : b.y2 - y, b.x - x : b.x2 - x] |= b.mask
    return Candidate(x, y, x2 - x, y2 - y, m)


def crop_for(cand: Candidate, ink: np.ndarray) -> np.ndarray:
    """MNIST-normalised 28×28 crop of one candidate: its soft ink under its (grown) mask."""
    pad = 2
    H, W = ink.shape
    x0, y0 = max(0, cand.x - pad), max(0, cand.y - pad)
    x1, y1 = min(W, cand.x2 + pad), min(H, cand.y2 + pad)
    m = np.zeros((y1 - y0, x1 - x0), np.uint8)
    m[cand.y - y0 : cand.y2 - y0, cand.x - x0 : cand.x2 - x0] = cand.mask
    m = cv2.dilate(m, np.ones((3, 3), np.uint8))
    region = ink[y0:y1, x0:x1] * m
    # Soft ink values, stretched so firm strokes saturate like MNIST's.
    region = saturate(region, floor=0.05)
    return normalize_digit(region)


def score_candidates(cands: list[Candidate], ink: np.ndarray, scorer: Scorer) -> None:
    """Fill in crop and probs for candidates that lack them (one batched classifier call)."""
    todo = [c for c in cands if c.probs is None]
    if not todo:
        return
    crops = np.stack([crop_for(c, ink) for c in todo])
    probs = scorer(crops)
    for c, crop, p in zip(todo, crops, probs, strict=True):
        c.crop, c.probs = crop, p
