"""Fit the shapes the reader cut on each line to what the line model reads there.

The segmentation proposes shapes; the line model (`vision.line_reader`) reads each line's
band as a whole and says how many digits it holds and where. The two are aligned by
position along the line (dynamic programming, monotone): a shape matched to a digit the
line model read stays, and its classifier reading is combined with the line model's; a
shape matched to none is dropped (a box wall, a printed mark, a speck); a digit read
where no shape was kept is cut there (a shape holding two digits is split in two, a
digit dropped as noise is taken back from the ink mask).
"""

from __future__ import annotations

import numpy as np

from vision.line_reader import LineRead, LineReader
from vision.segment import Candidate, Scorer, Segmentation, score_candidates, split_best

# Margins of a line's band around its shapes, in digit heights: the line model was
# trained on crops padded 0.25-0.6 of a digit height above and below, 0.3-1.2 beside.
BAND_MARGIN_Y = 0.35
BAND_MARGIN_X = 0.6
# Alignment costs, in digit heights of distance: keeping a shape the line model did not
# read, or reading a digit where no shape is, costs as much as being one height off.
UNMATCHED = 1.0


def band_of(
    line: list[Candidate], scale: float, shape: tuple[int, ...]
) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) in image pixels of the band around a line's shapes."""
    h = float(np.median([c.h for c in line])) * scale
    x0 = min(c.x for c in line) * scale - BAND_MARGIN_X * h
    x1 = max(c.x2 for c in line) * scale + BAND_MARGIN_X * h
    y0 = min(c.y for c in line) * scale - BAND_MARGIN_Y * h
    y1 = max(c.y2 for c in line) * scale + BAND_MARGIN_Y * h
    return (
        max(0, int(x0)),
        max(0, int(y0)),
        min(shape[1], int(np.ceil(x1))),
        min(shape[0], int(np.ceil(y1))),
    )


def align(shapes: list[float], digits: list[float], height: float) -> list[int]:
    """For each digit read (centre x), the index of the shape (centre x) matched to it, or -1.

    Both lists in reading order; a match costs the distance in `height`s, leaving a shape
    or a digit unmatched costs UNMATCHED.
    """
    n, m = len(shapes), len(digits)
    cost = np.zeros((n + 1, m + 1))
    cost[:, 0] = np.arange(n + 1) * UNMATCHED
    cost[0, :] = np.arange(m + 1) * UNMATCHED
    move = np.zeros((n + 1, m + 1), np.int8)  # 0 match, 1 shape left out, 2 digit left out
    move[1:, 0], move[0, 1:] = 1, 2
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            options = (
                cost[i - 1, j - 1] + abs(shapes[i - 1] - digits[j - 1]) / height,
                cost[i - 1, j] + UNMATCHED,
                cost[i, j - 1] + UNMATCHED,
            )
            move[i, j] = int(np.argmin(options))
            cost[i, j] = options[move[i, j]]
    out = [-1] * m
    i, j = n, m
    while i or j:
        step = move[i, j]
        if step == 0:
            out[j - 1] = i - 1
        i, j = (i - 1, j - 1) if step == 0 else (i - 1, j) if step == 1 else (i, j - 1)
    return out


def fit_lines(
    seg: Segmentation, image: np.ndarray, reader: LineReader, scorer: Scorer
) -> Segmentation:
    """`seg` with each line's shapes fitted to the line model's reading of its band.

    Every kept or new shape carries the line model's probabilities (`line_probs`). A page
    photographed askew (`seg.lean`) is left as it is: its bands would not be level (the
    reader turns such a page level and segments it again first).
    """
    if not seg.lines or seg.lean:
        return seg
    seg = Segmentation(_join_overlapping(seg.lines), seg.scale, seg.ink, seg.mask, seg.lean)
    bands = _bands(seg, image.shape)
    reads = reader.read([image[y0:y1, x0:x1] for x0, y0, x1, y1 in bands])
    lines = []
    for line, band, read in zip(seg.lines, bands, reads, strict=True):
        fitted = _fit_line(line, band, read, seg, scorer)
        if fitted:
            lines.append(fitted)
    return Segmentation(lines, seg.scale, seg.ink, seg.mask, seg.lean)


def band_boxes(seg: Segmentation, shape: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) in image pixels of each band the line model reads, one per line,
    as `fit_lines` cuts them (none for a page photographed askew)."""
    if not seg.lines or seg.lean:
        return []
    seg = Segmentation(_join_overlapping(seg.lines), seg.scale, seg.ink, seg.mask, seg.lean)
    return _bands(seg, shape)


def line_bands(seg: Segmentation, image: np.ndarray) -> list[np.ndarray]:
    """The bands of `image` the line model reads (`band_boxes`). The learning loop
    trains on them."""
    return [image[y0:y1, x0:x1] for x0, y0, x1, y1 in band_boxes(seg, image.shape)]


def _bands(seg: Segmentation, shape: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
    flat = [[c for number in line for c in number] for line in seg.lines]
    return [band_of(line, seg.scale, shape) for line in flat]


def _fit_line(
    line: list[list[Candidate]],
    band: tuple[int, int, int, int],
    read: LineRead,
    seg: Segmentation,
    scorer: Scorer,
) -> list[list[Candidate]]:
    shapes = sorted(
        ((ni, c) for ni, number in enumerate(line) for c in number), key=lambda s: s[1].cx
    )
    height = float(np.median([c.h for _, c in shapes]))
    xs = [(band[0] + x) / seg.scale for x in read.centres]
    match = align([c.cx for _, c in shapes], xs, height)
    placed: list[tuple[int, Candidate]] = []
    split_done: set[int] = set()
    for j, i in enumerate(match):
        if i >= 0:
            if i not in split_done:
                placed.append((shapes[i][0], shapes[i][1]))
            continue
        # A digit read where no shape was kept: inside a kept shape (two digits as one)?
        inside = [k for k, (_, c) in enumerate(shapes) if c.x <= xs[j] <= c.x2 and k in match]
        if inside and inside[0] not in split_done:
            k = inside[0]
            number, whole = shapes[k]
            pieces = split_best(whole, seg.ink, scorer, force=2)
            if len(pieces) == 2:
                split_done.add(k)
                placed = [(n, c) for n, c in placed if c is not whole]
                placed += [(number, p) for p in pieces]
                continue
        new = _cut_at(xs, j, shapes, height, seg)
        if new is not None:
            near = min(shapes, key=lambda s: abs(s[1].cx - xs[j]))[0] if shapes else 0
            placed.append((near, new))
    score_candidates([c for _, c in placed], seg.ink, scorer)
    placed.sort(key=lambda s: s[1].cx)
    for (_, c), probs in zip(placed, _line_probs(placed, xs, read), strict=True):
        c.line_probs = probs
    numbers: dict[int, list[Candidate]] = {}
    for number, c in placed:
        numbers.setdefault(number, []).append(c)
    return [numbers[k] for k in sorted(numbers)]


def _line_probs(
    placed: list[tuple[int, Candidate]], xs: list[float], read: LineRead
) -> list[np.ndarray]:
    """Each placed shape's line-model probabilities: those of the digit read nearest it.

    Every shape is placed for a digit read, so `xs` is never empty when `placed` is not.
    """
    centres = np.array(xs)
    return [read.probs[int(np.argmin(np.abs(centres - c.cx)))] for _, c in placed]


def _cut_at(
    xs: list[float], j: int, shapes: list[tuple[int, Candidate]], height: float, seg: Segmentation
) -> Candidate | None:
    """The ink of the cleaned mask between the neighbouring digits' midpoints, as a shape."""
    left = (xs[j - 1] + xs[j]) / 2 if j > 0 else xs[j] - 0.6 * height
    right = (xs[j] + xs[j + 1]) / 2 if j + 1 < len(xs) else xs[j] + 0.6 * height
    top = min(c.y for _, c in shapes) - 0.2 * height
    bottom = max(c.y2 for _, c in shapes) + 0.2 * height
    x0, x1 = max(0, int(left)), min(seg.mask.shape[1], int(np.ceil(right)))
    y0, y1 = max(0, int(top)), min(seg.mask.shape[0], int(np.ceil(bottom)))
    if x1 <= x0 or y1 <= y0:
        return None
    window = seg.mask[y0:y1, x0:x1].copy()
    for _, c in shapes:  # leave other shapes' ink to them
        ox0, oy0 = max(c.x, x0), max(c.y, y0)
        ox1, oy1 = min(c.x2, x1), min(c.y2, y1)
        if ox1 > ox0 and oy1 > oy0:
            window[oy0 - y0 : oy1 - y0, ox0 - x0 : ox1 - x0] &= ~c.mask[
                oy0 - c.y : oy1 - c.y, ox0 - c.x : ox1 - c.x
            ]
    ys, xs_ = np.nonzero(window)
    if ys.size < 3:
        return None
    by0, by1, bx0, bx1 = ys.min(), ys.max() + 1, xs_.min(), xs_.max() + 1
    mask = window[by0:by1, bx0:bx1]
    return Candidate(int(x0 + bx0), int(y0 + by0), int(bx1 - bx0), int(by1 - by0), mask)


def _join_overlapping(lines: list[list[list[Candidate]]]) -> list[list[list[Candidate]]]:
    """Lines whose shapes' vertical spans overlap by more than half are one line.

    Two lines of writing cannot share half their height; texture or a wall's foot had
    made the chaining start a second line beside the first.
    """
    out: list[list[list[Candidate]]] = []
    for line in lines:
        digits = [c for number in line for c in number]
        top, bottom = min(c.y for c in digits), max(c.y2 for c in digits)
        for kept in out:
            kd = [c for number in kept for c in number]
            k_top, k_bottom = min(c.y for c in kd), max(c.y2 for c in kd)
            shared = min(bottom, k_bottom) - max(top, k_top)
            if shared > 0.5 * min(bottom - top, k_bottom - k_top):
                kept.extend(line)
                kept.sort(key=lambda number: min(c.x for c in number))
                break
        else:
            out.append([list(number) for number in line])
    return out
