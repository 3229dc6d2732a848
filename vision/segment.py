"""Find the handwritten digits in a photo or scan and group them into numbers and lines.

The steps, each answering something real photos contain:

1. Work at a bounded resolution: large photos are shrunk, tiny crops (a 60×35 px cell of
   a form) are enlarged so strokes are several pixels wide. A quick probe on a 320 px
   copy measures the writing; large writing is worked on at about 48 px digit height,
   which is as accurate and several times faster. The size estimate ignores outlines
   (a hard shadow's edge) far taller than the solid shapes, and shapes far fainter than
   the writing (a shadow's tip).
2. Ink map: each colour channel is divided by its background (a morphological closing
   half a digit tall, so it follows shadow edges; the probe's or a first pass's digit
   height sets it), which flattens uneven light and makes coloured paper white; the
   darkest channel is kept as ink, so any pen colour shows. Light-on-dark input is
   detected and inverted.
3. Two thresholds with hysteresis: a firm one finds strokes, a softer one recovers their
   faint parts. Faint lines that join into a net over the page (squared paper, a form,
   photographed at a slant) are thresholded again between their ink and the pen's; the
   lines dropped still separate the numbers in a form's cells.
4. Ruled lines, table lines and box walls are removed (long thin runs, and short walls
   that join two removed lines), and the strokes they crossed are reconnected; on lines
   printed lighter than the pen, the pen's own strokes are kept.
5. Components are filtered by size relative to the median digit height and by ink
   (far fainter than the writing, or fainter and bolder: a shadow's wedge), fragments are
   merged (the hat of a 5, a broken 4; not two small digits in a column, nor a remnant
   of a rule). The rim of a dark region (the desk at a torn paper edge) is dropped, as is
   an unreadable shape cut by the image's border. Touching digits are split along
   cut paths through the faintest ink into the sequence of pieces the classifier scores
   best (dynamic programming; the thinnest cuts are tried first), and digits are chained
   into lines by their neighbours, so slanted lines survive; a large gap or a removed
   wall separates two numbers on one line.

"The classifier" here is whatever `Scorer` the caller passes. `DigitReader` passes its
fixed segmenter model: the thresholds below are tuned to that model's confidences.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

import cv2
import numpy as np

from vision.normalize import normalize_digit, quantile, saturate, stroke_width

log = logging.getLogger(__name__)

# Working resolution: long side at most this (pixels), short side at least MIN_SIDE.
MAX_SIDE = 800
MIN_SIDE = 200
MAX_UPSCALE = 6.0
# Large writing is worked on at about this digit height (pixels) ...
WORK_DIGIT_H = 48.0
# ... unless that would thin the pen's stroke below this width (pixels).
MIN_WORK_STROKE = 2.5
# The writing's size is estimated on a copy with this long side (pixels).
PROBE_SIDE = 320
# Shrinking never takes the short side below this (pixels).
MIN_WORK_SIDE = 150
# The background closing spans about this many digit heights: wide enough to erase any
# pen stroke, narrow enough to follow the edge of a shadow (a closing as wide as the page
# leaves a band of false ink along it). Without a digit height: a tenth of the long side.
BG_KERNEL_DIGITS = 0.5
# Ink this many times a printed line's own level, on the line, is the pen crossing it.
PEN_OVER_LINE = 1.4
# A shape cut by the image's border is kept only if the classifier is at least this sure.
BORDER_MIN_CONFIDENCE = 0.5
# The rim of a dark region, not a stroke: in a band around the shape, more than
# RIM_MAX_ALIKE of the pixels are within RIM_ALIKE of the way from its ink to the paper.
RIM_ALIKE = 0.1
RIM_MAX_ALIKE = 0.38
# Splitting touching digits: a first pass tries one cut per QUICK_CUT_WIDTH of the
# shape's aspect ratio and is kept when every piece is at least QUICK_CONFIDENCE sure,
# or, when it keeps the shape whole, the whole is at least QUICK_WHOLE_CONFIDENCE sure
# (a confident "9" read from a touching "01" must not stop the full search).
QUICK_CUT_WIDTH = 0.6
QUICK_CONFIDENCE = 0.9
QUICK_WHOLE_CONFIDENCE = 0.95

# A scorer maps MNIST-normalised crops [N, 28, 28] to class probabilities [N, 10].
Scorer = Callable[[np.ndarray], np.ndarray]
# A piece of a shape, by its box and mask: split passes over one shape share its scores.
PieceKey = tuple[int, int, int, int, bytes]


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

    @cached_property
    def half_width(self) -> float:
        """Half the boldest stroke's width: the mask's largest distance to background."""
        padded = cv2.copyMakeBorder(self.mask.astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, 0)
        return float(cv2.distanceTransform(padded, cv2.DIST_L2, 3).max())


@dataclass
class Segmentation:
    """Digits found in one image, in reading order, with the working-to-original scale."""

    lines: list[list[list[Candidate]]]  # lines → numbers → digits
    scale: float  # original pixel = working pixel × scale
    ink: np.ndarray = field(repr=False)  # float32 working-resolution ink map
    mask: np.ndarray = field(repr=False)  # bool working-resolution cleaned ink mask

    @property
    def digits(self) -> list[Candidate]:
        return [d for line in self.lines for number in line for d in number]


# --------------------------------------------------------------------------- ink map


def downscale(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-averaged downscale to `size` (w, h), several times faster than one INTER_AREA.

    OpenCV's area resize is fast only for integer factors; exact halvings come first, then
    one area resize from an image less than twice the target.
    """
    w, h = size
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
        small = downscale(image, (round(w * f), round(h * f)))
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
    faint_lines: np.ndarray  # a faint grid's lines, taken out of the mask (bool)


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
    mask, faint = threshold_ink(ink)
    writing = long_lines(mask)
    return InkLayers(ink, mask, writing, typical_height(writing, ink), faint)


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
    ratio = None
    for ch in channels:
        c = ch.astype(np.float32)
        bg = _background(c, dark_ink, kernel)
        if not dark_ink:  # light writing on a dark page: measure the departure from it
            c, bg = 255.0 - c, 255.0 - bg
        r = c / np.maximum(bg, 8.0)
        ratio = r if ratio is None else np.minimum(ratio, r, out=ratio)
    assert ratio is not None
    return np.clip(1.0 - ratio, 0.0, 1.0)


def detect_light_ink(grey: np.ndarray) -> bool:
    """True for light writing on a dark background (chalkboard, inverted scans).

    The background is the bulk of the pixels; ink is the minority that departs from it.
    Light ink is assumed only on a dark page where bright outliers outnumber dark ones.
    """
    # From the histogram: np.median and masks over the whole image cost ten times more.
    hist = np.bincount(grey.ravel(), minlength=256)
    cum = np.cumsum(hist)
    n = int(cum[-1])
    lower, upper = np.searchsorted(cum, [(n - 1) // 2, n // 2], side="right")
    median = (int(lower) + int(upper)) / 2  # as np.median: the middle two values' mean
    if median >= 110:
        return False
    levels = np.arange(256)
    bright = int(hist[levels > median + 60].sum()) / n
    dark = int(hist[levels < median - 40].sum()) / n
    return 0.001 < bright < 0.4 and bright > 2.0 * dark


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
    ink = _channel_ink(channels, dark_ink, kernel)
    return cv2.GaussianBlur(ink, (3, 3), 0)


def _otsu(values: np.ndarray) -> float:
    u8 = (values * 255).astype(np.uint8).reshape(-1, 1)
    return cv2.threshold(u8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[0] / 255.0


def threshold_ink(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mask, faint lines): hysteresis, components of a soft mask that hold firm ink.

    The faint lines of squared paper or of a form, once thresholded, join into one net
    spanning the page with the writing caught in it; no line filter then finds them (a
    slanted page bends every line) and the net sets every size estimate. Within such a
    net a second threshold, between the lines' ink and the pen's, keeps the writing; the
    lines it drops are returned, as they still separate the numbers in a form's cells.
    """
    hi = float(np.clip(_otsu(ink), 0.18, 0.45))
    soft = (ink > max(0.09, hi * 0.5)).astype(np.uint8)
    n, labels, stats = _components(soft)
    firm = _labels_holding(labels, n, ink > hi)
    mask = np.take(firm, labels)
    faint = np.zeros_like(mask)
    H, W = mask.shape
    box = stats[:, 2] * stats[:, 3]
    # A net covers much of the page yet little of its own box.
    for i in np.nonzero(firm & (box > 0.25 * H * W) & (stats[:, 4] < 0.6 * box))[0]:
        net = labels == i
        values = ink[net]
        t = _otsu(values)
        if t <= hi or np.median(values) >= 0.4 * quantile(values, 0.99):
            continue  # no fainter majority: the shape is writing
        kept = _holding(net & (ink > 0.75 * t), net & (ink > t))
        mask[net] = kept[net]
        faint |= net & ~kept
    return mask, faint


def _holding(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The components of `mask` that hold a pixel of `seeds` (bool masks)."""
    n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return np.take(_labels_holding(labels, n, seeds), labels)


def _labels_holding(labels: np.ndarray, n: int, seeds: np.ndarray) -> np.ndarray:
    """Per label of `n`, whether its component holds a pixel of `seeds` (never label 0)."""
    keep = np.zeros(n, bool)
    keep[labels[seeds]] = True
    keep[0] = False
    return keep


# --------------------------------------------------------------------------- lines


def _components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """(count, labels, stats) of the 8-connected components of a mask.

    BBDT gives the same labels and statistics as OpenCV's default algorithm (Spaghetti)
    whose statistics pass is about three times slower (measured with OpenCV 5.0).
    """
    m = mask.astype(np.uint8)
    return cv2.connectedComponentsWithStatsWithAlgorithm(m, 8, cv2.CV_32S, cv2.CCL_BBDT)[:3]


def typical_height(mask: np.ndarray, ink: np.ndarray | None = None) -> float:
    """Median height of digit-like components (lines and specks excluded).

    With the `ink` map, shapes far fainter than the writing do not count: the outline or
    the tip of a hard shadow is larger than any digit, and would otherwise set the size.
    """
    n, labels, stats = _components(mask)
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


def _open_lines(m: np.ndarray, length: int, axis: int) -> np.ndarray:
    """Runs of at least `length` px along `axis` (0: horizontal), tolerant of a slight slant.

    A thin line a few degrees off the axis is a staircase of short runs; thickening it by
    one pixel across the line first joins the steps into one long run.
    """
    across = np.ones((3, 1) if axis == 0 else (1, 3), np.uint8)
    along = cv2.getStructuringElement(cv2.MORPH_RECT, (length, 1) if axis == 0 else (1, length))
    return cv2.morphologyEx(cv2.dilate(m, across), cv2.MORPH_OPEN, along) & m


def long_lines(mask: np.ndarray) -> np.ndarray:
    """The mask without thin lines far longer than any digit (ruled paper, page edges).

    Found before the digit height is known: a rule that touches the digits would otherwise
    join them into one giant component and make every size estimate wrong.
    """
    m = mask.astype(np.uint8)
    H, W = m.shape
    max_t = max(3, round(0.008 * max(H, W)))
    horiz = _thin_only(_open_lines(m, max(15, W // 4), 0), max_t, axis=0)
    vert = _thin_only(_open_lines(m, max(15, H // 2), 1), max_t, axis=1)
    lines = (horiz | vert).astype(bool)
    return _bridge(mask & ~lines, horiz, vert, max_t + 4)


def _bridge(clean: np.ndarray, horiz: np.ndarray, vert: np.ndarray, t: int) -> np.ndarray:
    """Reconnect strokes a removed line crossed: fill line pixels with ink on both sides."""
    if horiz.any():
        bridged = cv2.morphologyEx(
            clean.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((t, 1), np.uint8)
        ).astype(bool)
        clean = clean | (bridged & horiz.astype(bool))
    if vert.any():
        bridged = cv2.morphologyEx(
            clean.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((1, t), np.uint8)
        ).astype(bool)
        clean = clean | (bridged & vert.astype(bool))
    return clean


def remove_rules(
    mask: np.ndarray, digit_h: float, ink: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Remove ruled/table lines and box walls; returns (clean mask, removed vertical walls)."""
    m = mask.astype(np.uint8)
    H, W = m.shape
    lh = max(15, round(1.6 * digit_h), W // 6) if digit_h else max(15, W // 4)
    horiz = _open_lines(m, lh, 0)
    lv = max(15, round(1.8 * digit_h)) if digit_h else max(15, H // 3)
    vert = _open_lines(m, lv, 1)
    # Slanted rules (perspective, a rotated page) escape the axis-aligned openings.
    hh, hv = _hough_lines(m, min(lh, lv), digit_h)
    horiz |= hh
    vert |= hv
    # A line is thin: drop "lines" that are thick blobs (a heavily inked bar of a digit).
    max_t = max(3, round(0.3 * digit_h)) if digit_h else 3 + H // 20
    horiz = _thin_only(horiz, max_t, axis=0)
    vert = _thin_only(vert, max_t, axis=1)
    # Take the blurred fringe of each line too, or slivers beside it survive as "1"s.
    fringe = np.ones((5, 5), np.uint8)
    horiz = cv2.dilate(horiz, fringe) & m
    vert = cv2.dilate(vert, fringe) & m
    lines = (horiz | vert).astype(bool)
    if not lines.any():
        return mask, np.zeros_like(mask)
    if ink is not None:
        pen = _pen_over_lines(mask, lines, ink)
        lines &= ~pen
        horiz[pen] = 0
        vert[pen] = 0
    clean = mask & ~lines
    # Short walls of boxes: thin vertical pieces joining two horizontal lines.
    walls = np.zeros_like(mask)
    if horiz.any():
        hb = cv2.dilate(horiz, np.ones((5, 3), np.uint8)).astype(bool)
        n, labels, stats = _components(clean)
        for i in range(1, n):
            x, y, w, h, _ = stats[i]
            if h < 4 or w > 0.35 * h:
                continue
            top = hb[max(0, y - 2) : y + 2, x : x + w].any()
            bottom = hb[max(0, y + h - 2) : min(H, y + h + 2), x : x + w].any()
            if top and bottom:
                walls[labels == i] = True
        clean &= ~walls
    # Reconnect strokes the lines crossed: close gaps only where ink lies on both sides.
    clean = _bridge(clean, horiz, vert, max(3, max_t + 4))
    return clean, walls | vert.astype(bool)


def _pen_over_lines(mask: np.ndarray, lines: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """The pen's strokes where they cross printed lines fainter than the pen.

    Ruled lines are printed lighter than ink: where a stroke crosses or runs along one,
    the ink map is well above the line's own level. Those pixels stay writing, so a 7's
    bar lying on a rule is not cut away with it. Only pixels joined to writing off the
    lines count; a darker stretch of a line on its own is still a line.
    """
    core = cv2.erode(lines.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    level = float(np.median(ink[core if core.any() else lines]))
    pen = lines & (ink > max(PEN_OVER_LINE * level, level + 0.15))
    if not pen.any():
        return pen
    rest = mask & ~lines
    return pen & _holding(rest | pen, rest)


def _hough_lines(m: np.ndarray, length: int, digit_h: float) -> tuple[np.ndarray, np.ndarray]:
    """Masks of long straight segments within 20° of horizontal and of vertical."""
    _H, _W = m.shape
    horiz = np.zeros_like(m)
    vert = np.zeros_like(m)
    gap = max(2, round(0.04 * digit_h))
    # Only shapes at least a line long can hold one: Hough on the rest is wasted time.
    joined = cv2.dilate(m, np.ones((gap + 1, gap + 1), np.uint8))
    n, labels, stats = _components(joined)
    long = np.zeros(n, bool)
    long[1:] = np.maximum(stats[1:, 2], stats[1:, 3]) >= 0.9 * length
    if not long.any():
        return horiz, vert
    segs = cv2.HoughLinesP(
        m & long[labels].astype(np.uint8),
        1,
        np.pi / 180,
        threshold=max(10, length // 2),
        minLineLength=length,
        maxLineGap=gap,
    )
    if segs is None:
        return horiz, vert
    for x1, y1, x2, y2 in np.asarray(segs).reshape(-1, 4):
        angle = abs(np.degrees(np.arctan2(y2 - y1, x2 - x1))) % 180
        if angle < 20 or angle > 160:
            cv2.line(horiz, (int(x1), int(y1)), (int(x2), int(y2)), 1, 3)
        elif 70 < angle < 110:
            cv2.line(vert, (int(x1), int(y1)), (int(x2), int(y2)), 1, 3)
    grow = np.ones((3, 3), np.uint8)
    horiz = cv2.dilate(horiz & m, grow) & m
    vert = cv2.dilate(vert & m, grow) & m
    return horiz, vert


def _thin_only(lines: np.ndarray, max_t: int, axis: int) -> np.ndarray:
    """Keep components of a line mask whose thickness (across the line) is ≤ max_t."""
    if not lines.any():
        return lines
    _, labels, stats = _components(lines)
    length = np.maximum(stats[1:, 2 if axis == 0 else 3], 1)
    thick = np.nonzero(stats[1:, 4] / length > max_t)[0] + 1
    if not thick.size:
        return lines
    out = lines.copy()
    for i in thick:  # few: clearing each in its box beats relabelling the whole image
        x, y, w, h = stats[i, :4]
        box = out[y : y + h, x : x + w]
        box[labels[y : y + h, x : x + w] == i] = 0
    return out


# --------------------------------------------------------------------------- candidates


def _candidates_from_mask(mask: np.ndarray) -> list[Candidate]:
    n, labels, stats = _components(mask)
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


def _merge_fragments(cands: list[Candidate], digit_h: float) -> list[Candidate]:
    """Merge strokes of one digit: stacked pieces whose union is still one digit tall.

    Smallest first: the first candidate with a partner is merged with its nearest one,
    and the search starts again.
    """
    while True:
        cands.sort(key=lambda c: c.area)
        pair = _fragment_pair(cands, digit_h)
        if pair is None:
            return cands
        i, j = pair
        merged = merge(cands[i], cands[j])
        cands = [c for k, c in enumerate(cands) if k not in (i, j)] + [merged]


def _fragment_pair(cands: list[Candidate], digit_h: float) -> tuple[int, int] | None:
    """(i, j): the first candidate that is a stroke of the same digit as another, and the
    nearest such other (vertical gap; the first on a tie). All pairs are tested at once."""
    if len(cands) < 2:
        return None
    x, y, w, h = np.array([(c.x, c.y, c.w, c.h) for c in cands]).T
    x2, y2 = x + w, y + h
    overlap = np.minimum.outer(x2, x2) - np.maximum.outer(x, x)  # horizontal, in pixels
    overlap = overlap / np.maximum(1, np.minimum.outer(w, w))  # of the narrower box
    gap = np.maximum.outer(y, y) - np.minimum.outer(y2, y2)
    union_h = np.maximum.outer(y2, y2) - np.minimum.outer(y, y)
    union_w = np.maximum.outer(x2, x2) - np.minimum.outer(x, x)
    shorter = np.minimum.outer(h, h)
    # A hairline longer than a digit is tall is what is left of a ruled line or an
    # underline: merged into the digits above it like the hat of a 5, it turns "79" into 3.
    rule = (w > 1.2 * digit_h) & (h < 0.2 * digit_h)
    ok = (overlap >= 0.3) & ~np.logical_or.outer(rule, rule)
    ok &= (gap <= 0.35 * digit_h) & (union_h <= 1.4 * digit_h)
    # Two small digits in a column, with a clear gap between:
    ok &= ~((gap > 0.15 * digit_h) & (shorter > 0.45 * digit_h))
    ok &= ~((union_w > 1.1 * union_h) & (shorter > 0.5 * digit_h))
    np.fill_diagonal(ok, False)
    rows = np.nonzero(ok.any(axis=1))[0]
    if not rows.size:
        return None
    i = int(rows[0])
    j = int(np.argmin(np.where(ok[i], gap[i], np.iinfo(gap.dtype).max)))
    return i, j


def _at_border(c: Candidate, shape: tuple[int, ...]) -> bool:
    """Whether the image's frame cuts the candidate (within a pixel of an edge)."""
    H, W = shape[:2]
    return c.x <= 1 or c.y <= 1 or c.x2 >= W - 1 or c.y2 >= H - 1


def _drop_noise(cands: list[Candidate], digit_h: float, shape: tuple[int, int]) -> list[Candidate]:
    W = shape[1]
    out = []
    for c in cands:
        if c.h < 0.4 * digit_h:
            continue  # specks, dashes, dots
        if c.h > 3.0 * digit_h and c.w < 0.2 * c.h:
            continue  # a leftover vertical rule
        edge = _at_border(c, shape)
        if edge and (c.h > 2.0 * digit_h or c.w > 4.0 * digit_h):
            continue  # the table or the dark margin beyond the paper
        if c.h > 3.0 * digit_h:
            continue  # a shadow edge, a fold, a long stroke: far too tall for a digit
        if edge and (c.w > 8 * c.h or c.h > 12 * c.w):
            continue  # a thin remnant of a frame at the border
        if edge and c.h <= 0.6 * digit_h and c.w <= 0.6 * digit_h:
            continue  # a fragment cut by the frame border
        near_side = min(c.x, W - c.x2) < 0.3 * digit_h
        if near_side and c.w < 0.15 * c.h and c.h > 0.6 * digit_h:
            continue  # the side wall of a frame the crop was cut from
        fill = c.area / max(1, c.w * c.h)
        if fill > 0.85 and c.w > 0.5 * digit_h and c.h > 0.5 * digit_h:
            continue  # a solid blob: a shadow or a stain, not a stroke
        out.append(c)
    return out


def _drop_blobs(cands: list[Candidate], digit_h: float) -> list[Candidate]:
    """Drop shapes far bolder than the writing's strokes: shadows, stains, the table."""
    if len(cands) < 2:
        return cands
    widths = [c.half_width for c in cands]
    typical = float(np.median(widths))
    return [
        c
        for c, w in zip(cands, widths, strict=True)
        if not (w > 2.5 * typical and w > 0.08 * digit_h)
    ]


def _drop_faint(cands: list[Candidate], ink: np.ndarray) -> list[Candidate]:
    """Drop shapes whose ink is far fainter than the writing's: shadow edges, paper grain.

    Dividing by the background turns the edge of a soft shadow into a weak gradient that
    the soft threshold still picks up; pen strokes are several times stronger. The tip of
    a hard shadow, narrower than the background kernel, is left as a wedge of ink that is
    both fainter and bolder than the pen's strokes; a faint digit keeps the pen's width.
    """
    if len(cands) < 2:
        return cands
    strength = []
    for c in cands:
        values = ink[c.y : c.y2, c.x : c.x2][c.mask]
        strength.append(quantile(values, 0.9) if values.size else 0.0)
    widths = [c.half_width for c in cands]
    typical = float(np.median(strength))
    typical_width = float(np.median(widths))
    out = []
    for c, s, w in zip(cands, strength, widths, strict=True):
        filled = c.area > 0.3 * c.w * c.h  # a patch rather than a thin stroke
        if s < 0.45 * typical or (filled and s < 0.55 * typical):
            continue
        if s < 0.65 * typical and w > 1.1 * typical_width:
            continue  # a shadow's wedge
        out.append(c)
    return out


def _drop_unsure_at_border(
    cands: list[Candidate], ink: np.ndarray, scorer: Scorer
) -> list[Candidate]:
    """Drop shapes cut by the image's border that the classifier cannot read.

    What the frame cuts is the paper's torn edge against the desk, or a digit only partly
    in view; a digit that fills a tight crop still reads with confidence.
    """
    at_border = [c for c in cands if _at_border(c, ink.shape)]
    if not at_border:
        return cands
    score_candidates(at_border, ink, scorer)
    unsure = {id(c) for c in at_border if c.confidence < BORDER_MIN_CONFIDENCE}
    return [c for c in cands if id(c) not in unsure]


def _drop_rims(cands: list[Candidate], image: np.ndarray, digit_h: float) -> list[Candidate]:
    """Drop shapes that are the rim of a dark region, not a stroke: the desk at the paper's edge.

    Dividing by the background leaves the edge of a region darker than the paper (the
    desk beyond a torn edge, narrower than the background kernel or not) as a band of
    ink along it. A pen stroke stands out from the paper all around it; the rim has the
    region, as dark as itself, along one side. So in a band around each shape, count the
    pixels about as dark as the shape: paper beside a stroke is not, nor is a shadow,
    which darkens the paper less than the pen.
    """
    H, W = image.shape[:2]
    r = max(2, round(0.12 * digit_h))
    ring_kernel = np.ones((2 * r + 1, 2 * r + 1), np.uint8)  # square: separable, fast
    out = []
    for c in cands:
        m = cv2.copyMakeBorder(c.mask.astype(np.uint8), r, r, r, r, cv2.BORDER_CONSTANT, value=0)
        ring = (cv2.dilate(m, ring_kernel) > 0) & (cv2.dilate(m, np.ones((3, 3), np.uint8)) == 0)
        # The part of the band beyond the frame is unknown: a shape cut by the border may
        # go on as dark beyond it (a strip of desk narrower than the background kernel).
        x0, y0 = max(0, c.x - r), max(0, c.y - r)
        x1, y1 = min(W, c.x2 + r), min(H, c.y2 + r)
        region = image[y0:y1, x0:x1]
        if region.ndim == 3:  # the darkest channel, as in the ink map
            region = cv2.min(cv2.min(region[..., 0], region[..., 1]), region[..., 2])
        box = (slice(y0 - c.y + r, y1 - c.y + r), slice(x0 - c.x + r, x1 - c.x + r))
        around = region[ring[box]].astype(np.float32)
        beyond = int(ring.sum()) - around.size
        if around.size == 0:
            continue  # nothing of its surroundings in view
        stroke = quantile(region[m[box] > 0].astype(np.float32), 0.5)
        # The paper is the side of the band farthest from the stroke (light ink, too).
        lo, hi = quantile(around, 0.05), quantile(around, 0.95)
        paper = hi if hi - stroke >= stroke - lo else lo
        alike = int((np.abs(around - stroke) <= RIM_ALIKE * abs(paper - stroke)).sum())
        if alike + beyond <= RIM_MAX_ALIKE * (around.size + beyond):
            out.append(c)
    return out


# --------------------------------------------------------------------------- crops


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


def _piece(cand: Candidate, left: np.ndarray, right: np.ndarray) -> Candidate | None:
    """The ink of a candidate between two cut paths (one column per row), tight."""
    xs = np.arange(cand.w)
    sub = cand.mask & (xs >= left[:, None]) & (xs < right[:, None])
    ys, xs_ = np.nonzero(sub)
    if ys.size == 0:
        return None
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs_.min(), xs_.max() + 1
    return Candidate(cand.x + x0, cand.y + y0, x1 - x0, y1 - y0, sub[y0:y1, x0:x1].copy())


def cut_paths(weight: np.ndarray, cols: Sequence[int], band: int) -> list[np.ndarray]:
    """For each column, the top-to-bottom path near it crossing the least ink.

    `weight` is the shape's ink per pixel (0 off the shape). Touching digits rarely meet
    along a straight vertical line (two zeros written in one stroke overlap); a path that
    may bend by one pixel per row follows the gap between. All columns are solved
    together, one row at a time (dynamic programming).
    """
    h, w = weight.shape
    if not cols:
        return []
    offsets = np.arange(-band, band + 1)
    xs = np.asarray(cols)[:, None] + offsets[None, :]  # [cuts, 2·band+1]
    valid = (xs >= 0) & (xs < w)
    xs_c = np.clip(xs, 0, w - 1)
    ink = np.where(valid[None], weight[:, xs_c].astype(np.float32), np.inf)  # [h, cuts, n]
    drift = 0.02 * np.abs(offsets)[None, :]
    moves = np.zeros(ink.shape, np.int8)
    # The cost of the best path to each position, with an unreachable column either side.
    padded = np.full((len(cols), len(offsets) + 2), np.inf)
    padded[:, 1:-1] = ink[0] + drift
    for y in range(1, h):
        left, centre, right = padded[:, :-2], padded[:, 1:-1], padded[:, 2:]
        # From the left on a tie, then straight down: the first of equal predecessors.
        go_left = (left <= centre) & (left <= right)
        go_right = ~go_left & (right < centre)
        moves[y] = go_right.view(np.int8) - go_left.view(np.int8)
        padded[:, 1:-1] = np.minimum(np.minimum(left, centre), right) + ink[y] + drift
    cost = padded[:, 1:-1]
    paths = []
    for k in range(len(cols)):
        path = np.empty(h, np.int64)
        x = int(np.argmin(cost[k]))
        for y in range(h - 1, -1, -1):
            path[y] = xs_c[k, x]
            x += int(moves[y, k, x])
        paths.append(path)
    return paths


def cut_columns(weight: np.ndarray, max_cuts: int | None = None) -> list[int]:
    """Columns (relative to the box) where a cut crosses little ink: the candidate cuts.

    Local minima of the shape's ink profile (`weight`, as for `cut_paths`), thinnest
    first, a few per digit the shape may hold (at most `max_cuts` when given).
    """
    h, w = weight.shape
    proj = np.convolve(weight.sum(axis=0).astype(np.float32), np.ones(3) / 3, mode="same")
    margin = max(2, round(0.1 * h))
    if w - 2 * margin < 1:
        return []
    sep = max(2, round(0.12 * h))
    if max_cuts is None:
        max_cuts = round(2 + 2.5 * w / max(1, h))
    cols = np.arange(margin, w - margin)
    half = max(1, sep // 2)
    padded = np.pad(proj, half, mode="edge")
    window_min = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1).min(axis=1)
    minima = cols[proj[cols] <= window_min[cols]]
    rest = cols[proj[cols] > window_min[cols]]
    chosen: list[int] = []
    for group in (minima, rest):
        for col in group[np.argsort(proj[group], kind="stable")]:
            if len(chosen) >= max_cuts:
                break
            if all(abs(int(col) - c) >= sep for c in chosen):
                chosen.append(int(col))
    return sorted(chosen)


def _piece_prior(p: Candidate, whole: Candidate) -> float:
    """Log-score penalty for shapes rarely a digit: a sliver that is not a confident 1."""
    one = int(np.argmax(p.probs)) == 1
    if p.w < 0.15 * whole.h:
        tall_one = one and p.confidence > 0.9 and p.h > 0.8 * whole.h
        return 0.0 if tall_one else 0.5
    if p.h < 0.5 * whole.h:
        return 0.5  # a fragment, not a digit of the run
    if one and p.h < 0.7 * whole.h:
        return 0.5  # a stroke of its neighbour (a 4's bar, a 1's flag): a 1 is full height
    return 0.0


def split_best(
    c: Candidate,
    ink: np.ndarray,
    scorer: Scorer,
    force: int | None = None,
    max_cuts: int | None = None,
    scored: dict[PieceKey, Candidate] | None = None,
) -> list[Candidate]:
    """The best reading of a shape as 1..N digits side by side, by the classifier's score.

    Cuts are tried at low-ink columns; every piece between two cuts is classified once (in
    one batch) and the best sequence of pieces is found by dynamic programming. Each extra
    cut must earn its place, and a very wide shape as one digit is penalised. With `force`,
    exactly that many pieces (or the whole, if no such cut exists). `max_cuts` limits the
    cuts tried to that many of the thinnest; `scored` carries pieces already classified
    from one call to the next on the same shape.
    """
    aspect = c.w / max(1, c.h)
    band = max(1, round(0.12 * c.h))
    # Cut where the ink is weakest, not only where the mask is thinnest: blurred digits
    # touch through their soft halos, as wide in the mask as a stroke but much fainter.
    weight = c.mask * ink[c.y : c.y2, c.x : c.x2]
    paths = [np.zeros(c.h, np.int64)]
    paths += cut_paths(weight, cut_columns(weight, max_cuts), band)
    paths.append(np.full(c.h, c.w, np.int64))
    pos = [int(np.median(p)) for p in paths]
    last = len(pos) - 1
    max_pieces = force or max(2, min(6, int(np.ceil(aspect * 1.6))))
    pieces: dict[tuple[int, int], Candidate] = {}
    for i in range(last):
        for j in range(i + 1, last + 1):
            if (i, j) == (0, last):
                continue
            width = pos[j] - pos[i]
            if width > 1.4 * c.h:
                break
            p = _piece(c, paths[i], paths[j])
            if p is not None and p.w >= 0.05 * c.h:
                pieces[(i, j)] = p
    if not pieces:
        return [c]
    if scored is not None:
        for key, p in pieces.items():
            seen = scored.setdefault((p.x, p.y, p.w, p.h, p.mask.tobytes()), p)
            pieces[key] = seen
    score_candidates([c, *pieces.values()], ink, scorer)

    def log_conf(p: Candidate) -> float:
        return float(np.log(max(p.confidence, 1e-6))) - _piece_prior(p, c)

    # best[j][n]: best score covering columns pos[0]..pos[j] with n pieces.
    best: list[dict[int, tuple[float, list[Candidate]]]] = [{} for _ in pos]
    best[0][0] = (0.0, [])
    for j in range(1, last + 1):
        for i in range(j):
            p = pieces.get((i, j))
            if p is None:
                continue
            for n, (score, seq) in best[i].items():
                if n + 1 > max_pieces:
                    continue
                cand_score = score + log_conf(p)
                if n + 1 not in best[j] or cand_score > best[j][n + 1][0]:
                    best[j][n + 1] = (cand_score, [*seq, p])
    if force:
        return best[last][force][1] if force in best[last] else [c]
    whole = float(np.log(max(c.confidence, 1e-6))) - 0.25 * max(0.0, aspect - 1.1)
    choice, choice_score = [c], whole
    for n, (score, seq) in best[last].items():
        # A cut must earn its place: one wide digit (a 2 with a long base) is common.
        score -= (n - 1) * (0.02 + 0.15 * max(0.0, 1.4 - aspect))
        if score > choice_score:
            choice, choice_score = seq, score
    return choice


def _split_touching(
    cands: list[Candidate], digit_w: float, ink: np.ndarray, scorer: Scorer
) -> list[Candidate]:
    """Split candidates too wide for one digit where the classifier agrees best.

    Most touching digits part at the thinnest columns: those few cuts are tried first
    (a fraction of the crops to classify), and the full search runs unless they split
    the shape into pieces that are all confident digits.
    """
    out = []
    for c in cands:
        aspect = c.w / max(1, c.h)
        wide = aspect > 1.0 or (digit_w > 0 and c.w > 1.6 * digit_w and aspect > 0.75)
        if not wide:
            out.append(c)
            continue
        scored: dict[PieceKey, Candidate] = {}
        cuts = max(1, round(aspect / QUICK_CUT_WIDTH))
        quick = split_best(c, ink, scorer, max_cuts=cuts, scored=scored)
        # Kept whole, the shape must be a surer digit than a piece must be.
        need = QUICK_CONFIDENCE if len(quick) > 1 else QUICK_WHOLE_CONFIDENCE
        if min(p.confidence for p in quick) >= need:
            out.extend(quick)
        else:
            out.extend(split_best(c, ink, scorer, scored=scored))
    return out


def _merge_checked(
    cands: list[Candidate], digit_h: float, ink: np.ndarray, scorer: Scorer
) -> list[Candidate]:
    """Merge side-by-side fragments (an open 4) when the classifier prefers the whole."""
    cands = sorted(cands, key=lambda c: c.x)
    i = 0
    while i < len(cands) - 1:
        a, b = cands[i], cands[i + 1]
        gap = b.x - a.x2
        v_overlap = min(a.y2, b.y2) - max(a.y, b.y)
        union = merge(a, b)
        plausible = (
            gap <= 0.2 * digit_h
            and v_overlap > 0.3 * min(a.h, b.h)
            and union.w <= 0.9 * union.h
            and (min(a.h, b.h) < 0.75 * union.h or min(a.confidence, b.confidence) < 0.8)
        )
        if plausible:
            score_candidates([union], ink, scorer)
            if union.confidence > 0.9 and union.confidence > min(a.confidence, b.confidence):
                cands[i : i + 2] = [union]
                continue
        i += 1
    return cands


# --------------------------------------------------------------------------- lines


def chain_lines(cands: list[Candidate], digit_h: float) -> list[list[Candidate]]:
    """Chain digits into lines by nearest right-hand neighbour at a similar height."""
    lines: list[list[Candidate]] = []
    for c in sorted(cands, key=lambda c: c.x):
        best, best_cost = None, None
        for line in lines:
            last = line[-1]
            gap = c.x - last.x2
            ref_h = max(last.h, c.h, 0.5 * digit_h)
            dy = abs(c.cy - last.cy)
            if (
                dy > 0.55 * ref_h
                or gap > 4.0 * max(digit_h, ref_h)
                or gap < -0.6 * min(c.w, last.w)
            ):
                continue
            cost = dy + 0.25 * max(gap, 0)
            if best_cost is None or cost < best_cost:
                best, best_cost = line, cost
        if best is None:
            lines.append([c])
        else:
            best.append(c)
    lines.sort(key=lambda line: float(np.median([c.cy for c in line])))
    return lines


def split_numbers(line: list[Candidate], walls: np.ndarray) -> list[list[Candidate]]:
    """Cut a line into numbers at large gaps or at removed walls between digits."""
    if len(line) < 2:
        return [line]
    h = float(np.median([c.h for c in line]))
    gaps = [b.x - a.x2 for a, b in itertools.pairwise(line)]
    ref = max(float(np.percentile(gaps, 25)), 0.15 * h)
    if walls.any():
        # Squared paper: its lines cross the digits themselves; a table's walls do not.
        crossed = sum(
            bool(walls[c.y + c.h // 5 : c.y2 - c.h // 5, c.x + c.w // 5 : c.x2 - c.w // 5].any())
            for c in line
        )
        if crossed > 0.2 * len(line):
            walls = np.zeros_like(walls)
    numbers = [[line[0]]]
    for a, b, gap in zip(line[:-1], line[1:], gaps, strict=True):
        wall = False
        if gap > 0 and walls.any():
            y0, y1 = round(min(a.y, b.y)), round(max(a.y2, b.y2))
            wall = bool(walls[y0:y1, a.x2 : b.x].any())
        if wall or gap > max(0.6 * h, 3.0 * ref):
            numbers.append([b])
        else:
            numbers[-1].append(b)
    return numbers


# --------------------------------------------------------------------------- main


def segment(image: np.ndarray, scorer: Scorer) -> Segmentation:
    """Find, clean, split and group the digits of a BGR or grey uint8 image."""
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    work, scale, probed_h = working_image(image)
    layers = ink_and_mask(work, probed_h)
    ink, mask, digit_h = layers.ink, layers.mask, layers.digit_h
    if digit_h <= 0:
        return Segmentation([], scale, ink, mask)
    clean, walls = remove_rules(mask, digit_h, ink)
    if layers.faint_lines.any():
        # A faint grid's cell walls still part the numbers in them (a form, a table).
        upright = _open_lines(layers.faint_lines.astype(np.uint8), round(0.8 * digit_h), 1)
        walls = walls | upright.astype(bool)
    cands = _candidates_from_mask(clean)
    digit_h = typical_height(clean) or digit_h
    cands = [c for c in cands if c.h >= 0.25 * digit_h or c.w >= 0.25 * digit_h]
    cands = _merge_fragments(cands, digit_h)
    cands = _drop_noise(cands, digit_h, clean.shape)
    cands = _drop_blobs(cands, digit_h)
    cands = _drop_faint(cands, ink)
    cands = _drop_rims(cands, work, digit_h)
    cands = _drop_unsure_at_border(cands, ink, scorer)
    if not cands:
        return Segmentation([], scale, ink, clean)
    digit_h = float(np.median([c.h for c in cands]))
    narrow = [c.w for c in cands if c.w < c.h]
    digit_w = float(np.median(narrow)) if narrow else 0.7 * digit_h
    cands = _split_touching(cands, digit_w, ink, scorer)
    score_candidates(cands, ink, scorer)
    cands = _merge_checked(cands, digit_h, ink, scorer)
    lines = chain_lines(cands, digit_h)
    grouped = [split_numbers(line, walls) for line in lines]
    return Segmentation(grouped, scale, ink, clean)
