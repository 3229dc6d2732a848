"""Step 5: touching digits split into the pieces the classifier reads best."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from vision.segment.candidates import Candidate, Scorer, merge, score_candidates

# Splitting touching digits: a first pass tries one cut per QUICK_CUT_WIDTH of the
# shape's aspect ratio and is kept when every piece is at least QUICK_CONFIDENCE sure,
# or, when it keeps the shape whole, the whole is at least QUICK_WHOLE_CONFIDENCE sure
# (a confident "9" read from a touching "01" must not stop the full search).
QUICK_CUT_WIDTH = 0.6
QUICK_CONFIDENCE = 0.9
QUICK_WHOLE_CONFIDENCE = 0.95
# A shape hardly wider than one digit may still hold two (a 1 touching its neighbour):
# it is searched too when at least PAIR_ASPECT wide and the segmenter, which knows such
# a shape as "not one digit", leaves less than PAIR_MASS of probability to the digits.
PAIR_ASPECT = 0.9
PAIR_MASS = 0.5
# A narrower shape is searched when the segmenter reads it at under UNSURE_CONFIDENCE as
# any digit and it is at least UNSURE_ASPECT wide: a 1 leaning into its neighbour's box
# ("14" read as a weak 4). Such a shape is cut into 1s only when each is at least
# ONES_HEIGHT of its height: two 1s side by side. A shorter "1" is the long flag of one
# 1, as many Europeans write it.
UNSURE_ASPECT = 0.45
UNSURE_CONFIDENCE = 0.3
ONES_HEIGHT = 0.85
# A shape the segmenter reads as one digit (more than ONE_DIGIT_MASS of probability on
# the digits, at least ONE_DIGIT_CONFIDENCE on one) pays ONE_DIGIT_CUT more per cut: a
# 2 with a long base, whose base reads as a 2 too, is not "22".
ONE_DIGIT_MASS = 0.9
ONE_DIGIT_CONFIDENCE = 0.7
ONE_DIGIT_CUT = 0.3
# Fragments side by side are merged when their union reads as a digit at least this sure
# (and surer than the weaker fragment), up to this wide for its height (an open-top 4).
# The segmenter's "not one digit" class keeps two neighbouring digits from reading as one.
MERGE_CONFIDENCE = 0.75
MERGE_MAX_ASPECT = 1.3
# Fragments are at most this many digit heights apart side by side.
MERGE_GAP = 0.2
# Fragments one above the other, diagonally (a 3 written in two strokes), are considered
# too when each is under FRAGMENT_HEIGHT digit heights, they are at most FRAGMENT_GAP
# apart vertically, and their union is at most FRAGMENT_UNION digit heights tall.
FRAGMENT_HEIGHT = 0.6
FRAGMENT_GAP = 0.2
FRAGMENT_UNION = 1.2
# A piece read as 1 but under 0.7 of the shape's height pays SHORT_ONE (log-score): it is
# a stroke of a digit, a 4's bar or the long flag of a 1 as many Europeans write it, whose
# stem then reads as a second 1 ("11" for one 1 touching the next digit). 0.5 let such
# a flag win over a stem read at 0.6 or less.
SHORT_ONE = 1.5
# A piece of a shape, by its box and mask: split passes over one shape share its scores.
PieceKey = tuple[int, int, int, int, bytes]


def _piece(cand: Candidate, left: np.ndarray, right: np.ndarray) -> Candidate | None:
    """The ink of a candidate between two cut paths (one column per row), tight."""
    xs = np.arange(cand.w)
    sub = cand.mask & (xs >= left[:, None]) & (xs < right[:, None])
    x0, y0, w, h = cv2.boundingRect(sub.view(np.uint8))
    if w == 0:
        return None
    return Candidate(cand.x + x0, cand.y + y0, w, h, sub[y0 : y0 + h, x0 : x0 + w].copy())


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
    """Log-score penalty for shapes rarely a digit: a fragment far shorter than the run; a
    1 shorter than a digit (the two add up)."""
    one = int(np.argmax(p.probs)) == 1
    penalty = 0.0
    if p.h < 0.5 * whole.h:
        penalty += 0.5  # a fragment, not a digit of the run
    if one and p.h < 0.7 * whole.h:
        penalty += SHORT_ONE  # a stroke of a digit (a 4's bar, a 1's flag): a 1 is full height
    return penalty


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
    cut must earn its place. With `force`, exactly that many pieces (or the whole, if no
    such cut exists). `max_cuts` limits the cuts tried to that many of the thinnest;
    `scored` carries pieces already classified from one call to the next on the same shape.
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
    whole = float(np.log(max(c.confidence, 1e-6)))
    # A cut must earn its place: one wide digit (a 2 with a long base) is common.
    cut_cost = 0.02 + 0.15 * max(0.0, 1.4 - aspect)
    if float(c.scores.sum()) > ONE_DIGIT_MASS and c.confidence >= ONE_DIGIT_CONFIDENCE:
        cut_cost += ONE_DIGIT_CUT
    choice, choice_score = [c], whole
    for n, (score, seq) in best[last].items():
        score -= (n - 1) * cut_cost
        if score > choice_score:
            choice, choice_score = seq, score
    return choice


def split_touching(cands: list[Candidate], ink: np.ndarray, scorer: Scorer) -> list[Candidate]:
    """Split candidates too wide for one digit, or unlike one, where the classifier agrees best.

    Most touching digits part at the thinnest columns: those few cuts are tried first
    (a fraction of the crops to classify), and the full search runs unless they split
    the shape into pieces that are all confident digits. Every candidate returned is
    scored (`probs` and `crop` set).
    """
    score_candidates(cands, ink, scorer)
    out = []
    for c in cands:
        aspect = c.w / max(1, c.h)
        wide = aspect > 1.0
        pair = aspect > PAIR_ASPECT and float(c.scores.sum()) < PAIR_MASS
        unsure = aspect > UNSURE_ASPECT and c.confidence < UNSURE_CONFIDENCE
        if not (wide or pair or unsure):
            out.append(c)
            continue
        scored: dict[PieceKey, Candidate] = {}
        cuts = max(1, round(aspect / QUICK_CUT_WIDTH))
        pieces = split_best(c, ink, scorer, max_cuts=cuts, scored=scored)
        # Kept whole, the shape must be a surer digit than a piece must be.
        need = QUICK_CONFIDENCE if len(pieces) > 1 else QUICK_WHOLE_CONFIDENCE
        if min(p.confidence for p in pieces) < need:
            pieces = split_best(c, ink, scorer, scored=scored)
        ones = all(int(np.argmax(p.probs)) == 1 for p in pieces)
        if not (wide or pair) and ones and any(p.h < ONES_HEIGHT * c.h for p in pieces):
            pieces = [c]  # a 1 with a long flag, not "11"
        out.extend(pieces)
    return out


def _mergeable(a: Candidate, b: Candidate, digit_h: float) -> bool:
    """Whether `b`, starting right of `a`'s left edge, may be a fragment of the same digit."""
    gap = b.x - a.x2
    v_overlap = min(a.y2, b.y2) - max(a.y, b.y)
    union_w = max(a.x2, b.x2) - min(a.x, b.x)
    union_h = max(a.y2, b.y2) - min(a.y, b.y)
    stacked = (
        max(a.h, b.h) < FRAGMENT_HEIGHT * digit_h
        and -v_overlap <= FRAGMENT_GAP * digit_h
        and union_h <= FRAGMENT_UNION * digit_h
    )
    return (
        gap <= MERGE_GAP * digit_h
        and (v_overlap > 0.3 * min(a.h, b.h) or stacked)
        and union_w <= MERGE_MAX_ASPECT * union_h
    )


def _union_wins(a: Candidate, b: Candidate, union: Candidate) -> bool:
    """Whether the classifier prefers the union of two fragments to the pieces.

    It must read surely, surer than the weaker piece, and not merely as the stronger
    piece read less surely: that is a digit with its neighbour's stroke (a faint 8 beside
    a 4) and would swallow the neighbour.
    """
    strong = a if a.confidence >= b.confidence else b
    label = int(np.argmax(union.probs))
    same = label == int(np.argmax(strong.probs)) and union.confidence <= strong.confidence
    return (
        union.confidence > MERGE_CONFIDENCE
        and union.confidence > min(a.confidence, b.confidence)
        and not same
    )


def merge_checked(
    cands: list[Candidate], digit_h: float, ink: np.ndarray, scorer: Scorer
) -> list[Candidate]:
    """Merge neighbouring fragments when the classifier prefers the whole.

    Side by side: an open 4 in two arms. Diagonally one above the other: a digit written
    in two strokes that do not meet, both pieces far shorter than a digit (two digits
    of a line are not that short, and two lines are further apart). A fragment's
    neighbour is the next shape to its right that may belong to it, not merely the next
    by x: on a page of several lines, the other lines' digits lie between.
    """
    cands = sorted(cands, key=lambda c: c.x)
    i = 0
    while i < len(cands) - 1:
        a = cands[i]
        j = _nearest_fragment(cands, i, digit_h)  # the nearest decides
        if j is not None:
            union = merge(a, cands[j])  # built only for a pair worth classifying
            score_candidates([union], ink, scorer)
            if _union_wins(a, cands[j], union):
                del cands[j]
                cands[i] = union  # starts where `a` did: the order by x holds
                continue
        i += 1
    return cands


def _nearest_fragment(cands: list[Candidate], i: int, digit_h: float) -> int | None:
    """Index of the first shape right of `cands[i]` (sorted by x) that may be its fragment."""
    a = cands[i]
    for j in range(i + 1, len(cands)):
        if cands[j].x - a.x2 > MERGE_GAP * digit_h:
            return None  # sorted by x: every later shape is further right
        if _mergeable(a, cands[j], digit_h):
            return j
    return None
