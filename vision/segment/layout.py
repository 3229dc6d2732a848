"""Step 5: digits chained into lines, and each line parted into numbers."""

from __future__ import annotations

import itertools

import numpy as np

from vision.segment.candidates import Candidate

# A line's slope, as its digits so far give it, is trusted up to this (tan 20°): a page
# photographed at a slant, not a second line of digits climbing into the first.
MAX_SLOPE = 0.36
# The slope counts half when the line's digits span SLOPE_SPAN digit heights, fully when
# they span many more (see `_Line`).
SLOPE_SPAN = 2.0
# A page whose lines lean at least this many degrees was photographed askew: the reader
# turns its writing level and segments it again. Less is handwriting's own wobble, or a
# page a few degrees off level that reads as well as it is.
DESKEW_MIN = 6.0


class _Line:
    """A line being chained, with the slope its digits' centres give it so far.

    The least-squares slope is shrunk toward level while the line is short: two
    neighbouring digits a handwriting's jitter apart say little about the page's slant,
    and extrapolated across the gap to the next number they would break the line.
    """

    def __init__(self, c: Candidate, digit_h: float) -> None:
        self.digits: list[Candidate] = []
        self._sums = [0.0] * 5  # n, Σx, Σy, Σx², Σxy of the digits' centres
        self._trust = (SLOPE_SPAN * digit_h) ** 2
        self.slope = 0.0
        self.add(c)

    def add(self, c: Candidate) -> None:
        self.digits.append(c)
        for i, v in enumerate((1.0, c.cx, c.cy, c.cx * c.cx, c.cx * c.cy)):
            self._sums[i] += v
        n, sx, sy, sxx, sxy = self._sums
        spread = n * sxx - sx * sx  # n² × the variance of the centres' x
        if spread <= 1e-6:
            return
        slope = (n * sxy - sx * sy) / spread
        span2 = 4.0 * spread / (n * n)  # 4 × their variance: two digits' distance, squared
        slope *= span2 / (span2 + self._trust)
        self.slope = max(-MAX_SLOPE, min(MAX_SLOPE, slope))


def chain_lines(cands: list[Candidate], digit_h: float) -> list[list[Candidate]]:
    """Chain digits into lines by nearest right-hand neighbour at the height the line runs at.

    The height expected is the last digit's, moved along the line's slope so far: on a
    page photographed at a slant a line climbs or falls steadily, and across a wide gap
    between two numbers it has moved by more than a fixed tolerance allows.
    """
    lines: list[_Line] = []
    for c in sorted(cands, key=lambda c: c.x):
        best, best_cost = None, None
        for line in lines:
            last = line.digits[-1]
            gap = c.x - last.x2
            ref_h = max(last.h, c.h, 0.5 * digit_h)
            dy = abs(c.cy - (last.cy + line.slope * (c.cx - last.cx)))
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
            lines.append(_Line(c, digit_h))
        else:
            best.add(c)
    ordered = [line.digits for line in lines]
    ordered.sort(key=lambda digits: float(np.median([c.cy for c in digits])))  # top to bottom
    return ordered


def page_lean(lines: list[list[Candidate]], digit_h: float) -> float:
    """How far the page's lines lean, in degrees counter-clockwise as seen (0: unknown).

    Measured on lines of at least three digits spanning two digit heights or more (the
    median over lines, each fitted through its digits' centres); a lean steeper than
    MAX_SLOPE allows is not trusted.
    """
    slopes = []
    for line in lines:
        xs = np.array([c.cx for c in line])
        if len(line) < 3 or xs.max() - xs.min() < 2.0 * digit_h:
            continue
        ys = np.array([c.cy for c in line])
        slopes.append(float(np.polyfit(xs, ys, 1)[0]))
    if not slopes:
        return 0.0
    slope = float(np.median(slopes))
    return 0.0 if abs(slope) > MAX_SLOPE else -float(np.degrees(np.arctan(slope)))


def digit_gap(lines: list[list[Candidate]]) -> float | None:
    """The gap a writer leaves between two digits of one number, over the whole page.

    The lower quartile of the gaps between neighbours, or with three gaps or fewer the
    smallest: between a few digits the quartile falls halfway into the gap between two
    numbers ("66 1"). None without any gap.
    """
    gaps = [b.x - a.x2 for line in lines for a, b in itertools.pairwise(line)]
    if not gaps:
        return None
    return float(np.percentile(gaps, 25, method="lower" if len(gaps) <= 3 else "linear"))


def split_numbers(line: list[Candidate], page_gap: float | None = None) -> list[list[Candidate]]:
    """Cut a line into numbers at large gaps between digits.

    A gap is large next to the line's own digit gap, or for a line of three gaps or fewer,
    next to the page's (`digit_gap`): a few gaps tell a line's spacing badly.
    """
    if len(line) < 2:
        return [line]
    h = float(np.median([c.h for c in line]))
    gaps = [b.x - a.x2 for a, b in itertools.pairwise(line)]
    own = float(np.percentile(gaps, 25))
    ref = max(own if page_gap is None or len(gaps) > 3 else page_gap, 0.15 * h)
    numbers = [[line[0]]]
    for b, gap in zip(line[1:], gaps, strict=True):
        if gap > max(0.6 * h, 3.0 * ref):
            numbers.append([b])
        else:
            numbers[-1].append(b)
    return numbers


def group_numbers(lines: list[list[Candidate]]) -> list[list[list[Candidate]]]:
    """Each line cut into its numbers (`split_numbers`), short lines by the page's gap."""
    gap = digit_gap(lines)
    return [split_numbers(line, gap) for line in lines]
