"""Step 1: the working resolution. Large photos are shrunk, tiny crops enlarged."""

from __future__ import annotations

import cv2
import numpy as np

from vision.normalize import stroke_width
from vision.segment.ink import ink_and_mask

# Working resolution: long side at most this (pixels), short side at least MIN_SIDE.
MAX_SIDE = 800
MIN_SIDE = 200
MAX_UPSCALE = 6.0
# Large writing is worked on at about this digit height (pixels) ... Measured on three
# seeds of 500 synthetic photos, 42 reads 0.6 to 1.8 points more of them exactly than 48,
# and more in all than 44, 40 or 38, in five sixths of the time; 36 loses real photos.
WORK_DIGIT_H = 42.0
# ... unless that would thin the pen's stroke below this width (pixels).
MIN_WORK_STROKE = 2.5
# The writing's size is estimated on a copy with this long side (pixels).
PROBE_SIDE = 320
# Shrinking never takes the short side below this (pixels).
MIN_WORK_SIDE = 150


def downscale(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-averaged downscale to `size` (w, h), several times faster than one INTER_AREA.

    OpenCV's area resize is fast only for integer factors; exact halvings come first, then
    one area resize from an image less than twice the target.
    """
    w, h = max(1, size[0]), max(1, size[1])  # a thin strip must not round to 0 pixels
    while image.shape[1] >= 2 * w and image.shape[0] >= 2 * h and min(image.shape[:2]) >= 4:
        H, W = image.shape[:2]
        even = image[: H - H % 2, : W - W % 2]
        image = cv2.resize(even, (W // 2, H // 2), interpolation=cv2.INTER_AREA)
    if (image.shape[1], image.shape[0]) == (w, h):
        return image
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)


def _bounded_factor(h: int, w: int) -> float:
    """Resize factor that brings the long side under MAX_SIDE and the short side over MIN_SIDE."""
    if max(h, w) > MAX_SIDE:
        return MAX_SIDE / max(h, w)
    if min(h, w) < MIN_SIDE:
        return min(MIN_SIDE / min(h, w), MAX_UPSCALE, MAX_SIDE / max(h, w))
    return 1.0


def _probe_writing(image: np.ndarray) -> tuple[float, float]:
    """(digit height, stroke width) in the image's pixels, estimated on a small copy.

    Cheap enough to run on every photo: everything is done at PROBE_SIDE pixels.
    Returns (0, 0) when no writing is found.
    """
    h, w = image.shape[:2]
    f = min(1.0, PROBE_SIDE / max(h, w))
    small = image
    if f < 1.0:
        small = downscale(image, (max(1, round(w * f)), max(1, round(h * f))))
    layers = ink_and_mask(small, 0.0)
    if layers.digit_h <= 0:
        return 0.0, 0.0
    return layers.digit_h / f, stroke_width(layers.writing) / f


def working_image(image: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Resize to the working resolution.

    Returns (image, original-per-working scale, digit height in working pixels as the
    probe measured it, or 0 where it did not run).

    The resolution is bounded (MAX_SIDE, MIN_SIDE), and further reduced when the writing
    is large: digits about WORK_DIGIT_H pixels tall read as well as larger ones, and
    the cost of every later step grows with the pixel count. Thin pens keep at least
    MIN_WORK_STROKE pixels of stroke.
    """
    h, w = image.shape[:2]
    factor = _bounded_factor(h, w)
    digit_h = 0.0
    if factor <= 1.0 and max(h, w) * factor > 1.25 * PROBE_SIDE:
        digit_h, stroke = _probe_writing(image)
        if digit_h * factor > WORK_DIGIT_H and stroke > 0:
            shrink = max(WORK_DIGIT_H / (digit_h * factor), MIN_WORK_STROKE / (stroke * factor))
            floor = MIN_WORK_SIDE / (min(h, w) * factor)  # the page around the digits
            factor *= min(1.0, max(shrink, floor))
    if abs(factor - 1.0) < 1e-3:
        return image, 1.0, digit_h
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    if factor < 1:
        return downscale(image, size), 1.0 / factor, digit_h * factor
    return cv2.resize(image, size, interpolation=cv2.INTER_CUBIC), 1.0 / factor, digit_h * factor
