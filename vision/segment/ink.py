"""Steps 2 and 3: the ink map, its thresholds, and the typical digit height."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import cv2
import numpy as np

from vision.normalize import quantile
from vision.segment.components import components, half_width, holding, labels_holding, select
from vision.segment.lines import long_lines

# The background closing spans about this many digit heights: wide enough to erase any
# pen stroke, narrow enough to follow the edge of a shadow (a closing as wide as the page
# leaves a band of false ink along it). Without a digit height: a tenth of the long side.
BG_KERNEL_DIGITS = 0.5
# The digit height ignores solid shapes, BLOB_BOLDER times bolder and BLOB_TALLER times
# taller than the median shape, whose boldest stroke is more than BLOB_WIDTH of their
# height wide: a hard shadow's wedge or spike, not a pen's digit (see `typical_height`).
# A spike is about a fifth as wide as it is tall.
BLOB_BOLDER = 3.0
BLOB_TALLER = 2.0
BLOB_WIDTH = 0.15
# A channel's pixels this far (0-255) from its paper's level depart from it: the pen, a
# stain (see `dark_ink_channels`).
CHANNEL_DEPARTURE = 40


def background_kernel(shape: tuple[int, ...], digit_h: float) -> int:
    """Width (pixels) of the background closing for an image of `shape` (see BG_KERNEL_DIGITS)."""
    by_size = max(shape[:2]) / 10
    if digit_h <= 0:
        return round(by_size)
    return round(min(by_size, BG_KERNEL_DIGITS * digit_h))


class InkLayers(NamedTuple):
    """What `ink_and_mask` finds in a working image."""

    ink: np.ndarray  # float32 [0, 1] ink strength per pixel
    mask: np.ndarray  # thresholded ink (bool)
    writing: np.ndarray  # the mask without long lines, for size estimates
    digit_h: float  # typical digit height in pixels (0: no writing found)


def ink_and_mask(image: np.ndarray, digit_h: float) -> InkLayers:
    """Ink map, mask and digit height of a working image.

    The background is sized by the writing: `digit_h` is a first guess (0: none). When
    the digits found disagree with it, the ink map is made again with the background
    kernel their height asks for.
    """
    kernel = background_kernel(image.shape, digit_h)
    layers = _ink_pass(image, kernel)
    if layers.digit_h <= 0:
        return layers
    better = background_kernel(image.shape, layers.digit_h)
    if not 0.67 < better / max(1, kernel) < 1.5:
        again = _ink_pass(image, better)
        return again if again.digit_h > 0 else again._replace(digit_h=layers.digit_h)
    return layers


def _ink_pass(image: np.ndarray, kernel: int) -> InkLayers:
    """One pass of `ink_and_mask` with a given background kernel."""
    ink = ink_map(image, kernel)
    mask = threshold_ink(ink)
    writing = long_lines(mask)
    return InkLayers(ink, mask, writing, typical_height(writing, ink))


def _background(channel: np.ndarray, dark_ink: bool, kernel: int) -> np.ndarray:
    """Paper brightness under the ink: a closing (opening for light ink) at 1/4 size."""
    h, w = channel.shape
    small_w, small_h = max(1, w // 4), max(1, h // 4)
    small = cv2.resize(channel, (small_w, small_h), interpolation=cv2.INTER_AREA)
    k = max(3, round(kernel / 4)) | 1
    ellipse = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    op = cv2.MORPH_CLOSE if dark_ink else cv2.MORPH_OPEN
    bg = cv2.morphologyEx(small, op, ellipse, borderType=cv2.BORDER_REPLICATE)
    bg = cv2.blur(bg, (3, 3))
    return cv2.resize(bg, (w, h), interpolation=cv2.INTER_LINEAR)


def _channel_ink(channels: Sequence[np.ndarray], dark_ink: bool, kernel: int) -> np.ndarray:
    # Ink is 1 - (pixel / background) in the darkest channel: the smallest ratio.
    ratio: np.ndarray | None = None
    for ch in channels:
        c = ch.astype(np.float32)
        bg = _background(c, dark_ink, kernel)
        if not dark_ink:  # light writing on a dark page: measure the departure from it
            c, bg = 255.0 - c, 255.0 - bg
        r = np.divide(c, np.maximum(bg, 8.0, out=bg), out=c)  # in place: fresh arrays
        ratio = r if ratio is None else np.minimum(ratio, r, out=ratio)
    if ratio is None:
        raise ValueError("an ink map needs at least one channel")
    return np.clip(1.0 - ratio, 0.0, 1.0)


def dark_ink_channels(channels: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The colour channels in which the pen is darker than the paper.

    A red pen on blue paper is brighter than the paper in the red channel: a closing
    there spreads the pen's brightness over the writing's whole area, and the paper
    beside the digits, darker than that, reads as a grey band of ink. Such a channel is
    left out, but only when the channels disagree: another one holds mostly dark
    departures from its paper while this one holds mostly bright ones. Glare or a light
    page brightens every channel alike, and then all are kept.
    """
    if len(channels) < 2:
        return list(channels)
    bright, dark = [], []
    for ch in channels:  # a sample of every fourth row and column is enough
        _, b, d, _ = _departures(ch[::4, ::4], CHANNEL_DEPARTURE, CHANNEL_DEPARTURE)
        bright.append(b)
        dark.append(d)
    light = [b > 2 * d for b, d in zip(bright, dark, strict=True)]
    if not any(d > 2 * b for b, d in zip(bright, dark, strict=True)) or all(light):
        return list(channels)
    return [ch for ch, skip in zip(channels, light, strict=True) if not skip]


def detect_light_ink(grey: np.ndarray) -> bool:
    """True for light writing on a dark background (chalkboard, inverted scans).

    The background is the bulk of the pixels; ink is the minority that departs from it.
    Light ink is assumed only on a dark page where bright outliers outnumber dark ones.
    """
    median, bright_px, dark_px, n = _departures(grey, 60, 40)
    if median >= 110:
        return False
    bright, dark = bright_px / n, dark_px / n
    return 0.001 < bright < 0.4 and bright > 2.0 * dark


def _departures(values: np.ndarray, above: float, below: float) -> tuple[float, int, int, int]:
    """(median, count over median + `above`, count under median - `below`, count) of uint8
    values, the paper being their bulk and the ink what departs from it.

    From the histogram: np.median and masks over the whole image cost ten times more.
    """
    hist = np.bincount(values.ravel(), minlength=256)
    cum = np.cumsum(hist)
    n = int(cum[-1])
    lower, upper = np.searchsorted(cum, [(n - 1) // 2, n // 2], side="right")
    median = (int(lower) + int(upper)) / 2  # as np.median: the middle two values' mean
    levels = np.arange(256)
    bright = int(hist[levels > median + above].sum())
    dark = int(hist[levels < median - below].sum())
    return median, bright, dark, n


def ink_map(image: np.ndarray, kernel: int | None = None) -> np.ndarray:
    """float32 [0, 1] ink strength per pixel, background ≈ 0, whatever the lighting.

    `kernel`: width of the background closing in pixels (default: `background_kernel`
    without a digit height).
    """
    if kernel is None:
        kernel = background_kernel(image.shape, 0.0)
    channels = cv2.split(image) if image.ndim == 3 else [image]
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    dark_ink = not detect_light_ink(grey)
    if dark_ink:
        channels = dark_ink_channels(channels)
    ink = _channel_ink(channels, dark_ink, kernel)
    return cv2.GaussianBlur(ink, (3, 3), 0)


def _otsu(values: np.ndarray) -> float:
    u8 = (values * 255).astype(np.uint8).reshape(-1, 1)
    return cv2.threshold(u8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[0] / 255.0


def threshold_ink(ink: np.ndarray) -> np.ndarray:
    """The ink mask: hysteresis, components of a soft mask that hold firm ink.

    The faint lines of squared paper or of a form, once thresholded, join into one net
    spanning the page with the writing caught in it; no line filter then finds them (a
    slanted page bends every line) and the net sets every size estimate. Within such a
    net a second threshold, between the lines' ink and the pen's, keeps the writing.
    """
    hi = float(np.clip(_otsu(ink), 0.18, 0.45))
    soft = (ink > max(0.09, hi * 0.5)).astype(np.uint8)
    n, labels, stats = components(soft)
    firm = labels_holding(labels, n, ink > hi)
    mask = select(labels, stats, firm)
    H, W = mask.shape
    box = stats[:, 2] * stats[:, 3]
    # A net covers much of the page yet little of its own box.
    for i in np.nonzero(firm & (box > 0.25 * H * W) & (stats[:, 4] < 0.6 * box))[0]:
        net = labels == i
        values = ink[net]
        t = _otsu(values)
        if t <= hi or np.median(values) >= 0.4 * quantile(values, 0.99):
            continue  # no fainter majority: the shape is writing
        kept = holding(net & (ink > 0.75 * t), net & (ink > t))
        mask[net] = kept[net]
    return mask


def _bold_and_tall(labels: np.ndarray, stats: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Which components (of those `ok`) are solid, BLOB_BOLDER times bolder and
    BLOB_TALLER times taller than the median one: a hard shadow's wedge, not writing."""
    x, y, w, h = (stats[1:, i] for i in range(4))
    tall = ok & (h > BLOB_TALLER * np.median(h[ok]))
    if not tall.any():
        return tall  # the common case: no stroke widths needed
    half = np.zeros(len(h), np.float32)
    for i in np.nonzero(ok)[0]:
        box = (slice(y[i], y[i] + h[i]), slice(x[i], x[i] + w[i]))
        half[i] = half_width(labels[box] == i + 1)
    solid = 2 * half > BLOB_WIDTH * h
    blob = tall & solid & (half > BLOB_BOLDER * np.median(half[ok]))
    return blob if (ok & ~blob).any() else np.zeros_like(blob)


def typical_height(mask: np.ndarray, ink: np.ndarray | None = None) -> float:
    """Median height of digit-like components (lines and specks excluded).

    With the `ink` map, shapes far fainter than the writing do not count: the outline or
    the tip of a hard shadow is larger than any digit, and would otherwise set the size.
    Nor do shapes far bolder and taller than the rest: a hard shadow's solid wedge, as
    dark as the pen on a small copy where the pen's strokes blur.
    """
    n, labels, stats = components(mask)
    if n <= 1:
        return 0.0
    x, y, w, h, area = (stats[1:, i] for i in range(5))
    ok = (h >= 6) & (area >= 15) & (w < 6 * h) & (h < 15 * np.maximum(w, 1))
    if ink is not None and ok.sum() >= 3:
        mean = np.zeros(len(h), np.float32)
        for i in np.nonzero(ok)[0]:
            box = (slice(y[i], y[i] + h[i]), slice(x[i], x[i] + w[i]))
            values = ink[box][labels[box] == i + 1]
            mean[i] = values.sum() / values.size  # = mean(), without its overhead
        faint = mean < 0.5 * np.median(mean[ok])
        if (ok & ~faint).any():
            ok &= ~faint
    H, W = mask.shape
    inside = (x > 1) & (y > 1) & (x + w < W - 1) & (y + h < H - 1)
    if (ok & inside).any():
        ok &= inside  # the paper's edge, the table top: not digits
    if ok.sum() >= 3:
        ok &= ~_bold_and_tall(labels, stats, ok)
    # An outline around a large empty area (the edge of a hard shadow, a fold) covers a
    # few per cent of its box; a digit's strokes, at least a tenth of theirs. One such
    # shape far taller than the solid ones would otherwise set the size.
    sparse = area < 0.1 * w * h
    solid = ok & ~sparse
    if solid.any():
        ok &= ~(sparse & (h > 1.8 * np.median(h[solid])))
    if not ok.any():
        return float(np.max(h))
    hs = h[ok]
    top = np.percentile(hs, 90)
    hs = hs[hs >= 0.4 * top]
    return float(np.median(hs))
