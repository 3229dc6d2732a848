"""Step 4: ruled lines, table lines and box walls, removed from the ink mask."""

from __future__ import annotations

import cv2
import numpy as np

from vision.segment.components import components, holding, select

# Ink this many times a printed line's own level, on the line, is the pen crossing it.
PEN_OVER_LINE = 1.4


def open_lines(m: np.ndarray, length: int, axis: int) -> np.ndarray:
    """Runs of at least `length` px along `axis` (0: horizontal), tolerant of a slight slant.

    A thin line a few degrees off the axis is a staircase of short runs; thickening it by
    one pixel across the line first joins the steps into one long run.
    """
    across = np.ones((3, 1) if axis == 0 else (1, 3), np.uint8)
    thick = cv2.dilate(m, across)
    # The opening keeps runs of `length`, or of half that where they meet the image's edge
    # (beyond it, erosion counts as ink): a row (column) with fewer ink pixels has none.
    # Most pages have no rule: the count skips the costly long-kernel opening.
    if np.count_nonzero(thick, axis=1 - axis).max(initial=0) < length - length // 2:
        return np.zeros_like(m)
    along = cv2.getStructuringElement(cv2.MORPH_RECT, (length, 1) if axis == 0 else (1, length))
    return cv2.morphologyEx(thick, cv2.MORPH_OPEN, along) & m


def long_lines(mask: np.ndarray) -> np.ndarray:
    """The mask without thin lines far longer than any digit (ruled paper, page edges).

    Found before the digit height is known: a rule that touches the digits would otherwise
    join them into one giant component and make every size estimate wrong.
    """
    m = mask.astype(np.uint8)
    H, W = m.shape
    max_t = max(3, round(0.008 * max(H, W)))
    horiz = _thin_only(open_lines(m, max(15, W // 4), 0), max_t, axis=0)
    vert = _thin_only(open_lines(m, max(15, H // 2), 1), max_t, axis=1)
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


def remove_rules(mask: np.ndarray, digit_h: float, ink: np.ndarray | None = None) -> np.ndarray:
    """The mask without ruled/table lines and long box walls."""
    m = mask.astype(np.uint8)
    H, W = m.shape
    lh = max(15, round(1.6 * digit_h), W // 6) if digit_h else max(15, W // 4)
    horiz = open_lines(m, lh, 0)
    lv = max(15, round(1.8 * digit_h)) if digit_h else max(15, H // 3)
    vert = open_lines(m, lv, 1)
    # Slanted rules (perspective, a rotated page) escape the axis-aligned openings.
    hh, hv = _hough_lines(m, min(lh, lv), digit_h)
    horiz |= hh
    vert |= hv
    # Take the blurred fringe of each line too, or slivers beside it survive as "1"s.
    fringe = np.ones((5, 5), np.uint8)
    horiz = cv2.dilate(horiz, fringe) & m
    vert = cv2.dilate(vert, fringe) & m
    lines = (horiz | vert).astype(bool)
    if not lines.any():
        return mask
    if ink is not None:
        pen = _pen_over_lines(mask, lines, ink)
        lines &= ~pen
        horiz[pen] = 0
        vert[pen] = 0
    clean = mask & ~lines
    # Reconnect strokes the lines crossed: close gaps only where ink lies on both sides,
    # across the widest a line is (0.3 of a digit height) and a little more.
    widest = max(3, round(0.3 * digit_h)) if digit_h else 3 + H // 20
    clean = _bridge(clean, horiz, vert, widest + 4)
    return clean


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
    return pen & holding(rest | pen, rest)


def _hough_lines(m: np.ndarray, length: int, digit_h: float) -> tuple[np.ndarray, np.ndarray]:
    """Masks of long straight segments within 20° of horizontal and of vertical."""
    horiz = np.zeros_like(m)
    vert = np.zeros_like(m)
    gap = max(2, round(0.04 * digit_h))
    # Only shapes at least a line long can hold one: Hough on the rest is wasted time.
    joined = cv2.dilate(m, np.ones((gap + 1, gap + 1), np.uint8))
    n, labels, stats = components(joined)
    long = np.zeros(n, bool)
    long[1:] = np.maximum(stats[1:, 2], stats[1:, 3]) >= 0.9 * length
    if not long.any():
        return horiz, vert
    segs = cv2.HoughLinesP(
        m & select(labels, stats, long).view(np.uint8),
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
    _, labels, stats = components(lines)
    length = np.maximum(stats[:, 2 if axis == 0 else 3], 1)
    return select(labels, stats, stats[:, 4] / length <= max_t).view(np.uint8)
