"""Step 5: digits chained into lines, and each line parted into numbers."""

from __future__ import annotations

import itertools

import numpy as np

from vision.segment.candidates import Candidate


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
