"""MNIST normalisation of one digit: the single function inference and training share.

MNIST digits were size-normalised to fit a 20×20 box keeping their aspect ratio, with
anti-aliased grey levels, then centred by centre of mass in a 28×28 field, white on
black. A reader only matches MNIST test accuracy on real handwriting if it reproduces
exactly this, including a stroke width close to MNIST's (about 2.5 px at 28×28).
"""

from __future__ import annotations

import cv2
import numpy as np

# Bump when the normalisation changes: checkpoints record the version they were trained on.
PREPROCESSING_VERSION = 1

SIZE = 28
BOX = 20
TARGET_STROKE = 2.6  # MNIST's median stroke width at 28×28, in pixels
WORK_SIDE = 2 * BOX  # larger crops are shrunk to this before their stroke is matched
_SQUARE3 = np.ones((3, 3), np.uint8)


def stroke_width(mask: np.ndarray) -> float:
    """Estimated stroke width of a binary mask: 2 × the mean ridge of its distance map."""
    if not mask.any():
        return 0.0
    # Pad: OpenCV does not count the outside of the image as background.
    padded = cv2.copyMakeBorder(mask.astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 3)
    ridge = dist[(dist >= cv2.dilate(dist, _SQUARE3)) & (dist > 0)]
    if not ridge.size:
        return 1.0
    return float(2.0 * (ridge.sum() / ridge.size))  # = mean(), without its overhead


def quantile(values: np.ndarray, q: float) -> float:
    """np.percentile(values, 100·q) (linear interpolation) for a 1-D array, several times faster.

    Called for every crop the reader classifies, where np.percentile's overhead dominated.
    """
    pos = q * (values.size - 1)
    lo = int(pos)
    hi = min(lo + 1, values.size - 1)
    part = np.partition(values, (lo, hi))
    return float(part[lo] + (part[hi] - part[lo]) * (pos - lo))


def saturate(img: np.ndarray, floor: float) -> np.ndarray:
    """Stretch soft ink so its firm strokes (90th percentile above `floor`) reach 1."""
    strong = img[img > floor]
    peak = quantile(strong, 0.9) if strong.size else 1.0
    return np.clip(img / max(peak, 1e-3), 0.0, 1.0)


def normalize_digit(ink: np.ndarray, *, fix_stroke: bool = True) -> np.ndarray:
    """Bright-ink-on-dark image of one digit (any size, uint8 or float) → uint8 [28, 28].

    Empty input returns an all-black field rather than failing, so a caller can flag it.
    """
    if ink.ndim != 2:
        raise ValueError(f"normalize_digit expects a 2-D grey image, got shape {ink.shape}")
    img = ink.astype(np.float32, copy=False)
    peak = img.max()
    if peak > 1.0:
        img, peak = img / 255.0, peak / 255.0
    if not peak > 0.25:
        return np.zeros((SIZE, SIZE), np.uint8)
    x, y, w, h = cv2.boundingRect((img > 0.05).view(np.uint8))
    img = img[y : y + h, x : x + w]
    # MNIST strokes are saturated at their core: stretch faint ink to full intensity.
    img = saturate(img, floor=0.25)
    h, w = img.shape
    if max(h, w) > WORK_SIDE:
        # Stroke matching at a bounded size: as exact, and cheap for a digit filling a photo.
        f = WORK_SIDE / max(h, w)
        size = (max(1, round(w * f)), max(1, round(h * f)))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        h, w = img.shape
        # A thin pen fades when shrunk: saturate its core again.
        img = saturate(img, floor=0.05)
    mask = img > 0.25
    scale = BOX / max(h, w)
    if fix_stroke:
        img = _match_stroke(img, mask, scale)
    new_w = max(1, round(w * scale))
    new_h = max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(img, (new_w, new_h), interpolation=interp)
    small = np.clip(small, 0.0, 1.0)
    total = small.sum()
    if total <= 0:
        return np.zeros((SIZE, SIZE), np.uint8)
    cy = float((small.sum(axis=1) * np.arange(new_h)).sum() / total)
    cx = float((small.sum(axis=0) * np.arange(new_w)).sum() / total)
    shift = np.float32([[1, 0, SIZE / 2 - 0.5 - cx], [0, 1, SIZE / 2 - 0.5 - cy]])
    field = cv2.warpAffine(small, shift, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderValue=0)
    # Interpolating values in [0, 1] stays in [0, 1]: no clip is needed before rounding.
    return (field * 255.0 + 0.5).astype(np.uint8)


def _match_stroke(img: np.ndarray, mask: np.ndarray, scale: float) -> np.ndarray:
    """Thicken or thin the strokes so that, after scaling, they are about MNIST's width."""
    width = stroke_width(mask) * scale
    if width <= 0:
        return img
    # Pixels to add (or remove) on each side of the stroke, in source resolution.
    delta = (TARGET_STROKE - width) / 2.0 / scale
    steps = round(abs(delta))
    if steps == 0:
        return img
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * steps + 1, 2 * steps + 1))
    if delta > 0:
        padded = cv2.copyMakeBorder(img, steps, steps, steps, steps, cv2.BORDER_CONSTANT, 0)
        return cv2.dilate(padded, kernel)
    # Thin only while the stroke stays at least ~1.5 px wide after scaling.
    max_steps = int((width - 1.5) / 2.0 / scale)
    steps = min(steps, max_steps)
    if steps <= 0:
        return img
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * steps + 1, 2 * steps + 1))
    return cv2.erode(img, kernel)
