"""Step 5: fragments of one digit merged; shapes that are not digits dropped."""

from __future__ import annotations

import cv2
import numpy as np

from vision.normalize import quantile
from vision.segment.candidates import Candidate, candidates_from_mask, merge

# The rim of a dark region, not a stroke: in a band around the shape, more than
# RIM_MAX_ALIKE of the pixels are within RIM_ALIKE of the way from its ink to the paper.
RIM_ALIKE = 0.1
RIM_MAX_ALIKE = 0.38
# A shape more than TALL digit heights tall is not one digit. It may hold one (a digit
# joined to a shadow's edge): its parts at least FIRM_PART as strong as its strongest ink.
TALL = 3.0
FIRM_PART = 0.5


def merge_fragments(cands: list[Candidate], digit_h: float) -> list[Candidate]:
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
    shorter = np.minimum.outer(h, h)
    # A hairline longer than a digit is tall is what is left of a ruled line or an
    # underline: merged into the digits above it like the hat of a 5, it turns "79" into 3.
    rule = (w > 1.2 * digit_h) & (h < 0.2 * digit_h)
    ok = (overlap >= 0.3) & ~np.logical_or.outer(rule, rule)
    ok &= (gap <= 0.35 * digit_h) & (union_h <= 1.4 * digit_h)
    # Two small digits in a column, with a clear gap between:
    ok &= ~((gap > 0.15 * digit_h) & (shorter > 0.45 * digit_h))
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


def firm_parts_of_tall(cands: list[Candidate], digit_h: float, ink: np.ndarray) -> list[Candidate]:
    """Cut the digits out of shapes far too tall to be one: a digit joined to a shadow's edge.

    Dividing by the background leaves a faint band of ink along a hard shadow's edge. A
    digit it touches becomes part of a shape several digits tall, which `drop_noise`
    drops whole. The pen's ink is several times stronger than the band's, so such a
    shape is replaced by its parts drawn at least FIRM_PART as strongly as its strongest
    ink. A shadow's edge on its own stays about as tall, for `drop_noise`.
    """
    tall = [c for c in cands if c.h > TALL * digit_h]
    if not tall:
        return cands
    out = [c for c in cands if c.h <= TALL * digit_h]
    for c in tall:
        strongest = _strength(c, ink, 0.98)
        firm = c.mask & (ink[c.y : c.y2, c.x : c.x2] > FIRM_PART * strongest)
        for part in candidates_from_mask(firm):
            out.append(Candidate(c.x + part.x, c.y + part.y, part.w, part.h, part.mask))
    return out


def _strength(c: Candidate, ink: np.ndarray, q: float) -> float:
    """The `q` quantile of the ink under a candidate's mask."""
    values = ink[c.y : c.y2, c.x : c.x2][c.mask]
    return quantile(values, q) if values.size else 0.0


def drop_noise(cands: list[Candidate], digit_h: float, shape: tuple[int, int]) -> list[Candidate]:
    """Drop shapes that cannot be one digit by their size, shape and place alone.

    Specks and dashes, the table or margin beyond the paper, shapes far too tall for a
    digit, a fragment cut by the border and a frame's side wall; each rule below names
    what it removes.
    """
    W = shape[1]
    out = []
    for c in cands:
        if c.h < 0.4 * digit_h:
            continue  # specks, dashes, dots
        edge = _at_border(c, shape)
        if edge and (c.h > 2.0 * digit_h or c.w > 4.0 * digit_h):
            continue  # the table or the dark margin beyond the paper
        if c.h > TALL * digit_h:
            continue  # a shadow edge, a fold, a leftover rule: far too tall for a digit
        if edge and c.h <= 0.6 * digit_h and c.w <= 0.6 * digit_h:
            continue  # a fragment cut by the frame border
        near_side = min(c.x, W - c.x2) < 0.3 * digit_h
        if near_side and c.w < 0.15 * c.h and c.h > 0.6 * digit_h:
            continue  # the side wall of a frame the crop was cut from
        out.append(c)
    return out


def drop_faint(cands: list[Candidate], ink: np.ndarray) -> list[Candidate]:
    """Drop shapes whose ink is far fainter than the writing's: shadow edges, paper grain.

    Dividing by the background turns the edge of a soft shadow into a weak gradient that
    the soft threshold still picks up; pen strokes are several times stronger. The tip of
    a hard shadow, narrower than the background kernel, is left as a wedge of ink that is
    both fainter and bolder than the pen's strokes; a faint digit keeps the pen's width.
    """
    if len(cands) < 2:
        return cands
    strength = [_strength(c, ink, 0.9) for c in cands]
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


def drop_rims(cands: list[Candidate], image: np.ndarray, digit_h: float) -> list[Candidate]:
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
