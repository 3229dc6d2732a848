"""Segmentation steps on their own: ink, lines, fragments, filters and splits."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.vision.conftest import render
from vision.segment import Candidate, Scorer


def _solid(x: int, y: int, w: int, h: int) -> Candidate:
    """A candidate whose mask fills its box."""
    return Candidate(x, y, w, h, np.ones((h, w), bool))


def _reads(label: int, conf: float, rest: float) -> np.ndarray:
    """Probabilities that read `label` at `conf` and `rest` for every other digit."""
    probs = np.full(10, rest, np.float32)
    probs[label] = conf
    return probs


def _always(label: int, conf: float, rest: float = 0.01) -> Scorer:
    """A scorer that reads every crop alike (the union of two fragments, in merge tests)."""
    return lambda x: np.tile(_reads(label, conf, rest), (len(x), 1))


def test_rims_of_dark_regions_are_dropped_but_not_strokes_beside_them() -> None:
    """A band along the edge of a dark region goes; a stroke beside a shadow stays."""
    from vision.segment.filters import drop_rims

    img = np.full((200, 300), 230, np.uint8)
    img[:, 200:] = 90  # the desk beyond the paper
    img[:, 196:200] = 90  # its rim, as the mask would hold it
    img[100:200, :120] = 160  # a shadow on the page
    img[60:140, 100:104] = 40  # a pen stroke crossing the shadow's edge
    rim, stroke = _solid(196, 50, 4, 100), _solid(100, 60, 4, 80)
    assert drop_rims([rim, stroke], img, 50.0) == [stroke]
    light = 255 - img  # light ink on a dark page, a light desk
    assert drop_rims([rim, stroke], light, 50.0) == [stroke]


def test_a_rule_remnant_is_not_merged_into_the_digit_above() -> None:
    """A 5's hat joins the 5; a hairline longer than a digit under it does not."""
    from vision.segment.filters import merge_fragments

    body, hat = _solid(100, 60, 30, 35), _solid(105, 48, 28, 5)
    assert len(merge_fragments([body, hat], 50.0)) == 1
    digit, line = _solid(100, 50, 30, 48), _solid(80, 103, 70, 3)
    assert len(merge_fragments([digit, line], 50.0)) == 2


def test_the_nearest_fragment_is_merged_first() -> None:
    """A stroke between two shapes joins the nearer one; a digit beside is left alone."""
    from vision.segment.filters import merge_fragments

    # The stroke is 6 px under one shape and 12 px over the other; either union would be
    # one digit tall, but not all three together.
    near, hat, far = _solid(100, 62, 30, 35), _solid(104, 50, 26, 6), _solid(100, 26, 30, 12)
    beside = _solid(160, 60, 30, 36)
    merged = merge_fragments([far, beside, near, hat], 50.0)
    boxes = sorted((c.x, c.y, c.w, c.h) for c in merged)
    assert boxes == [(100, 26, 30, 12), (100, 50, 30, 47), (160, 60, 30, 36)]


def test_thick_bars_are_not_lines() -> None:
    """A line is thin across itself: a heavily inked bar as long as a line stays writing."""
    from vision.segment.lines import _thin_only

    lines = np.zeros((60, 200), np.uint8)
    lines[10:12, 10:190] = 1  # a ruled line, 2 px thick
    lines[30:42, 20:180] = 1  # a bar, 12 px thick
    kept = _thin_only(lines, 3, axis=0)
    assert kept[10:12, 10:190].all() and not kept[30:42].any()
    upright = _thin_only(np.ascontiguousarray(lines.T), 3, axis=1)
    assert np.array_equal(upright, kept.T)
    assert _thin_only(np.zeros_like(lines), 3, axis=0).sum() == 0


def test_light_ink_is_told_by_the_median_grey() -> None:
    """Light writing on a dark page: the median (of an even count, the middle two's mean)."""
    from vision.segment.ink import detect_light_ink

    board = np.full((40, 50), 60, np.uint8)
    board[10:14, 5:45] = 230  # chalk
    assert detect_light_ink(board)
    assert not detect_light_ink(255 - board)  # dark pen on white paper
    # 1000 pixels: 500 at 100, 495 at 120, 5 at 175. The median is 110, a bright page.
    # Taking the lower middle value (100) would call the 175s light ink.
    grey = np.array([100] * 500 + [120] * 495 + [175] * 5, np.uint8).reshape(20, 50)
    assert not detect_light_ink(grey)
    grey[grey == 120] = 118  # median 109: a dark page, and the 175s are its writing
    assert detect_light_ink(grey)


def test_cuts_follow_the_faintest_ink_not_the_thinnest_mask() -> None:
    """Blurred digits touch through a halo as wide in the mask as a stroke, but faint."""
    from vision.segment.split import cut_columns, cut_paths

    mask = np.zeros((40, 60), bool)
    mask[14:26] = True  # one band of mask, equally thick everywhere
    weight = mask * np.float32(0.9)
    weight[:, 36:42] *= 0.2  # where two digits' halos meet
    (col,) = cut_columns(weight, max_cuts=1)
    assert 36 <= col < 42
    (path,) = cut_paths(weight, [30], band=8)
    assert (path[14:26] >= 36).all() and (path[14:26] < 42).all()


def test_a_one_cut_from_a_shape_is_full_height() -> None:
    """A short stroke read as a 1 (a 4's bar, a 1's flag) costs the split that makes it."""
    from vision.segment.split import _piece_prior

    whole = _solid(0, 0, 90, 60)

    def piece(h: int, label: int) -> Candidate:
        p = _solid(0, 0, 20, h)
        p.probs = np.eye(10, dtype=np.float32)[label] * 0.9 + 0.01
        return p

    assert _piece_prior(piece(58, 1), whole) == 0.0
    assert _piece_prior(piece(38, 1), whole) > 0.0
    assert _piece_prior(piece(38, 7), whole) == 0.0


def _net_and_digits(line_ink: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ink map, its grid lines, its three 0s): a slanted grid through three 0s."""
    lines = np.zeros((300, 400), np.float32)
    for v in range(0, 400, 25):
        cv2.line(lines, (v, 0), (v + 10, 299), line_ink, 2)
        cv2.line(lines, (0, v), (399, v + 10), line_ink, 2)
    digits = np.zeros_like(lines)
    for x in (100, 160, 220):
        cv2.ellipse(digits, (x, 150), (14, 22), 0, 0, 360, 0.8, 4)
    soft = (3, 3)  # a camera's soft edges
    ink = cv2.GaussianBlur(np.maximum(lines, digits), soft, 0)
    return ink, cv2.GaussianBlur(lines, soft, 0), cv2.GaussianBlur(digits, soft, 0)


def test_a_faint_net_leaves_the_mask_but_not_the_digits() -> None:
    from vision.segment.ink import threshold_ink

    ink, lines, digits = _net_and_digits(0.2)
    mask = threshold_ink(ink)
    grid = (lines > 0.1) & (digits == 0)
    assert mask[digits > 0.4].all()
    assert not mask[grid].any()
    # Lines as dark as the pen are not faint: they are left to the line filters.
    ink, lines, digits = _net_and_digits(0.8)
    mask = threshold_ink(ink)
    assert mask[(lines > 0.4) & (digits == 0)].all()


def test_pen_on_a_faint_rule_is_kept_and_the_rule_removed() -> None:
    from vision.segment.lines import remove_rules

    ink = np.zeros((200, 400), np.float32)
    cv2.line(ink, (0, 100), (399, 100), 0.3, 2)  # a printed rule
    cv2.rectangle(ink, (350, 99), (380, 101), 0.6, -1)  # a darker stretch of it, alone
    pen = np.zeros_like(ink)
    cv2.line(pen, (60, 100), (100, 100), 0.9, 3)  # a 7's bar along the rule
    cv2.line(pen, (100, 100), (80, 160), 0.9, 3)  # and its stem
    ink = np.maximum(ink, pen)
    mask = ink > 0.15
    clean = remove_rules(mask, 60.0, ink)
    assert clean[pen > 0].mean() > 0.95
    assert not clean[100, 150:340].any() and not clean[100, 350:381].any()
    # Without the ink map the bar goes with the rule.
    assert clean[98:103, 65:95].sum() > 4 * remove_rules(mask, 60.0)[98:103, 65:95].sum()


@pytest.mark.parametrize("shape", [(1500, 2000, 3), (961, 1283, 3), (777, 333)])
def test_downscale_is_an_area_average(shape) -> None:
    """Halvings then one area resize: the size asked for, and the values INTER_AREA gives."""
    from vision.segment.resolution import downscale

    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 256, shape, dtype=np.uint8), (0, 0), 3)
    size = (shape[1] * 3 // 19, shape[0] * 3 // 19)
    out = downscale(img, size)
    ref = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    assert out.shape == ref.shape and out.dtype == img.dtype
    assert np.abs(out.astype(int) - ref.astype(int)).mean() < 2.0


def test_typical_height_is_the_writings_not_a_tall_outline() -> None:
    """Four 40 px digits and the outline of a hard shadow 290 px tall: the digits set the size.

    A shape as sparse as an outline (a few per cent of its box is ink) is left out when it
    is far taller than the solid shapes, but a lone digit among specks still counts.
    """
    from vision.segment.ink import typical_height

    mask = np.zeros((400, 600), np.uint8)
    for i in range(4):
        cv2.ellipse(mask, (60 + 60 * i, 70), (12, 18), 0, 0, 360, 1, 4)
    cv2.polylines(mask, [np.array([(20, 390), (300, 100), (580, 390)], np.int32)], True, 1, 3)
    assert 38 <= typical_height(mask.astype(bool)) <= 44
    lone = np.zeros((400, 600), np.uint8)
    cv2.ellipse(lone, (300, 200), (60, 100), 0, 0, 360, 1, 12)
    for x in (50, 120, 500):
        lone[30:38, x : x + 4] = 1  # specks
    assert typical_height(lone.astype(bool)) > 190


def test_faint_shapes_do_not_set_the_digit_height() -> None:
    """A hard shadow's tip, as tall as five digits but a third as dark, is lighting."""
    from vision.segment.ink import typical_height

    mask = np.zeros((400, 600), np.uint8)
    for i in range(4):
        cv2.ellipse(mask, (60 + 60 * i, 70), (12, 18), 0, 0, 360, 1, 6)
    ink = mask.astype(np.float32) * 0.7
    for tip in range(3):  # three wedges, more than half the shapes, hardly bolder than 0s
        pts = np.array([(300 + 90 * tip, 390), (308 + 90 * tip, 200), (316 + 90 * tip, 390)])
        cv2.fillPoly(mask, [pts.astype(np.int32)], 1)
        cv2.fillPoly(ink, [pts.astype(np.int32)], 0.2)
    assert typical_height(mask.astype(bool)) > 150
    assert 38 <= typical_height(mask.astype(bool), ink) <= 44


@pytest.mark.parametrize(("bold", "height"), [(True, 41), (False, 125)])
def test_shapes_far_bolder_and_taller_do_not_set_the_digit_height(bold: bool, height: int) -> None:
    """A hard shadow's solid wedge on the small probe copy, where the pen's strokes blur
    to its darkness, is not writing; large digits written with the same pen are."""
    from vision.segment.ink import typical_height

    mask = np.zeros((200, 400), np.uint8)
    for i in range(3):
        cv2.ellipse(mask, (30 + 40 * i, 40), (10, 18), 0, 0, 360, 1, 3)  # 0s, 41 px tall
    for i in range(2):
        x = 200 + 80 * i
        if bold:  # a wedge 60 px wide at its foot
            cv2.fillPoly(mask, [np.array([(x, 180), (x + 30, 60), (x + 60, 180)], np.int32)], 1)
        else:  # a 0 of the same pen, 125 px tall
            cv2.ellipse(mask, (x + 30, 120), (25, 60), 0, 0, 360, 1, 3)
    assert typical_height(mask.astype(bool)) == height


@pytest.mark.parametrize("page_edges", [False, True])
def test_a_shadows_narrow_spike_does_not_set_the_digit_height(page_edges: bool) -> None:
    """A hard shadow's spike, five times as tall as it is wide, is no digit; nor do the
    dark desk showing at the page's two sides make the digits' pen look bold beside it."""
    from vision.segment.ink import typical_height

    mask = np.zeros((200, 400), np.uint8)
    for i in range(3):
        cv2.ellipse(mask, (60 + 40 * i, 40), (10, 18), 0, 0, 360, 1, 3)  # 0s, 41 px tall
    cv2.fillPoly(mask, [np.array([(200, 190), (215, 60), (230, 190)], np.int32)], 1)
    if page_edges:
        mask[:, :16] = mask[:, -16:] = 1
    assert 38 <= typical_height(mask.astype(bool)) <= 44


def test_touching_digits_try_the_thinnest_cuts_first(reader, clear_digits, monkeypatch) -> None:
    """Barely touching digits part at their thinnest columns: the first, small search
    reads them, with a fraction of the crops the full search classifies."""
    import vision.segment as segment
    import vision.segment.split as split

    img = render("5076", clear_digits, gap=-0.03, height=80)

    def run() -> tuple[str, int]:
        crops: list[int] = []

        def scorer(x: np.ndarray) -> np.ndarray:
            crops.append(len(x))
            return reader.classifier.classify(x)

        seg = segment.segment(img, scorer)
        return "".join(str(int(np.argmax(c.probs))) for c in seg.digits), sum(crops)

    text, quick = run()
    monkeypatch.setattr(split, "QUICK_CONFIDENCE", 2.0)  # never good enough: full search
    monkeypatch.setattr(split, "QUICK_WHOLE_CONFIDENCE", 2.0)
    full_text, full = run()
    assert text == full_text == "5076"
    assert quick < 0.5 * full, (quick, full)


@pytest.mark.parametrize(("width", "mass", "pieces"), [(57, 0.2, 2), (57, 1.0, 1), (48, 0.2, 1)])
def test_a_shape_unlike_one_digit_is_searched_too(width: int, mass: float, pieces: int) -> None:
    """Two bars joined at the foot, nearly as wide as tall, are searched for a cut when
    the segmenter leaves little probability to the digits (its "not one digit" class).
    The right bar is a little shorter: narrower shapes, searched only because the
    segmenter reads them unsurely, are not cut into a 1 and a shorter stroke."""
    from vision.segment.split import split_touching

    ink = np.zeros((80, 80), np.float32)
    ink[10:70, 10:22] = 1.0
    ink[22:70, 10 + width - 12 : 10 + width] = 1.0  # 0.8 of the left bar's height
    ink[64:70, 10 : 10 + width] = 0.3  # a faint join: the shape is one component
    shape = Candidate(10, 10, width, 60, ink[10:70, 10 : 10 + width] > 0)

    def scorer(x: np.ndarray) -> np.ndarray:
        probs = np.full((len(x), 10), 0.01, np.float32)
        for row, crop in zip(probs, x, strict=True):
            runs = np.diff((crop[:20] > 64).any(0).astype(int)) == 1
            if runs.sum() + (crop[:20, 0] > 64).any() > 1:
                row[:] = mass / 10  # two strokes side by side: not one digit
            else:
                row[1] = 0.91  # one bar: a sure 1
        return probs

    assert shape.w / shape.h > 0.9 if width == 57 else shape.w / shape.h < 0.9
    assert len(split_touching([shape], ink, scorer)) == pieces


@pytest.mark.parametrize(
    ("right_w", "right_h", "whole_conf", "labels"),
    [(20, 50, 0.2, [1, 4]), (20, 50, 0.5, [4]), (8, 30, 0.2, [4]), (8, 50, 0.2, [1, 1])],
)
def test_a_narrow_shape_read_unsurely_is_searched_but_not_cut_into_a_1_and_its_flag(
    right_w: int, right_h: int, whole_conf: float, labels: list[int]
) -> None:
    """A 1 leaning into its neighbour's box makes a shape no wider than one digit that the
    segmenter reads unsurely: it is cut into "1" and "4". Read surely, it stays whole, and
    so does a shape cut into a 1 and a shorter bar (a 1 with a long flag); two bars of
    full height are two 1s."""
    from vision.segment.split import split_touching

    ink = np.zeros((70, 60), np.float32)
    ink[10:60, 5:13] = 1.0  # a 1
    ink[60 - right_h : 60, 21 : 21 + right_w] = 1.0  # a block (a "4") or a second bar
    ink[55:60, 5 : 21 + right_w] = 0.3  # a faint join: the shape is one component
    shape = Candidate(5, 10, 16 + right_w, 50, ink[10:60, 5 : 21 + right_w] > 0)

    def scorer(x: np.ndarray) -> np.ndarray:
        probs = np.full((len(x), 10), 0.01, np.float32)
        for row, crop in zip(probs, x, strict=True):
            cols = (crop[:20] > 64).any(0)
            runs = np.diff(cols.astype(int)) == 1
            if runs.sum() + cols[0] > 1:  # two strokes side by side: the whole shape
                row[:] = (1 - whole_conf) / 9
                row[4] = whole_conf
            elif cols.sum() > 5:
                row[4] = 0.92  # a block: a sure 4
            else:
                row[1] = 0.92  # one bar: a sure 1
        return probs

    assert 0.45 < shape.w / shape.h < 0.9
    out = split_touching([shape], ink, scorer)
    assert [int(np.argmax(c.probs)) for c in out] == labels


@pytest.mark.parametrize(
    ("whole", "pieces"), [(_reads(2, 0.9, 0.01), 1), (_reads(2, 0.5, 0.01), 2)]
)
def test_a_shape_read_surely_as_one_digit_is_cut_only_for_far_better_pieces(
    whole: np.ndarray, pieces: int
) -> None:
    """A 2 with a long base: cut off, the base reads as a 2 as well. When the segmenter
    reads the whole shape as one sure digit, the cut does not earn its place; when it
    leaves probability to "not one digit", it does."""
    from vision.segment.split import split_best

    ink = np.zeros((60, 90), np.float32)
    ink[5:55, 5:17] = ink[5:55, 63:75] = 1.0  # two strokes ...
    ink[50:55, 5:75] = 0.3  # ... joined by a faint foot: one shape, 1.4 times as wide
    shape = Candidate(5, 5, 70, 50, ink[5:55, 5:75] > 0)

    def scorer(x: np.ndarray) -> np.ndarray:
        probs = np.tile(_reads(2, 0.95, 0.005), (len(x), 1))  # any one stroke: a sure 2
        for row, crop in zip(probs, x, strict=True):
            cols = (crop[:20] > 64).any(0)
            if (np.diff(cols.astype(int)) == 1).sum() + cols[0] > 1:
                row[:] = whole  # both strokes: the whole shape
        return probs

    assert len(split_best(shape, ink, scorer)) == pieces


def _open_four(ink: np.ndarray) -> tuple[Candidate, Candidate]:
    """Draw a 4 with an open top in two fragments, an "L" and its stem; (L, stem) as read."""
    ink[30:50, 2:6] = ink[46:50, 2:30] = 1.0  # the left arm and the bar: an "L"
    ink[20:55, 32:38] = 1.0  # the stem
    left = Candidate(2, 30, 28, 20, ink[30:50, 2:30] > 0)
    stem = _solid(32, 20, 6, 35)
    left.probs = _reads(6, 0.3, 0.07)  # a broken 4's arm reads as nothing much
    stem.probs = _reads(1, 0.91, 0.01)
    return left, stem


@pytest.mark.parametrize(("union_four", "merged"), [(0.8, True), (0.03, False)])
def test_an_open_four_in_two_fragments_is_merged(union_four: float, merged: bool) -> None:
    """The arms of a wide, open-top 4 merge when their union reads as a 4; two digits whose
    union the segmenter finds unlike any one digit stay apart."""
    from vision.segment.split import merge_checked

    ink = np.zeros((70, 70), np.float32)
    left, stem = _open_four(ink)
    out = merge_checked([stem, left], 50.0, ink, _always(4, union_four))
    assert (len(out) == 1) == merged
    if merged:
        assert (out[0].x, out[0].w, out[0].h) == (2, 36, 35)  # wider than tall


def test_fragments_merge_past_a_digit_of_another_line() -> None:
    """The arms of an open 4 merge although a digit of the next line lies between them in
    x order (on a page, every line's shapes interleave)."""
    from vision.segment.split import merge_checked

    ink = np.zeros((140, 70), np.float32)
    left, stem = _open_four(ink)
    ink[90:130, 12:18] = 1.0  # a 1 on the next line, between them by x
    below = _solid(12, 90, 6, 40)
    below.probs = _reads(1, 0.95, 0.005)
    out = merge_checked([stem, below, left], 50.0, ink, _always(4, 0.8))
    assert sorted((c.x, c.y, c.w, c.h) for c in out) == [(2, 20, 36, 35), (12, 90, 6, 40)]


@pytest.mark.parametrize(("union_conf", "merged"), [(0.94, False), (0.99, True)])
def test_a_weak_digit_is_not_swallowed_by_its_neighbour(union_conf: float, merged: bool) -> None:
    """A faint 8 touching-close to a sure 4: their union reads as the 4, less surely than
    the 4 alone, so the 8 stays a digit. A stroke that makes the digit surer still merges."""
    from vision.segment.split import merge_checked

    ink = np.zeros((60, 80), np.float32)
    ink[12:50, 5:25] = 0.5  # the faint digit
    ink[8:56, 27:55] = 1.0  # its sure neighbour
    weak, sure = _solid(5, 12, 20, 38), _solid(27, 8, 28, 48)
    weak.probs = _reads(8, 0.7, 0.02)
    sure.probs = _reads(4, 0.965, 0.003)
    out = merge_checked([sure, weak], 48.0, ink, _always(4, union_conf, 0.001))
    assert len(out) == (1 if merged else 2)


@pytest.mark.parametrize(("piece_h", "merged"), [(25, True), (40, False)])
def test_two_short_strokes_one_above_the_other_are_merged(piece_h: int, merged: bool) -> None:
    """A digit written in two strokes that do not meet (the top of a 3 above and left of
    its foot) merges when the union reads as a digit; pieces as tall as digits, such as
    two lines' digits, stay apart however the union reads."""
    from vision.segment.split import merge_checked

    ink = np.zeros((120, 80), np.float32)
    top_y, foot_y = 5, 5 + piece_h + 3  # the foot starts just below the top piece
    ink[top_y : top_y + piece_h, 10:40] = 1.0
    ink[foot_y : foot_y + piece_h, 40:55] = 1.0
    top = Candidate(10, top_y, 30, piece_h, ink[top_y : top_y + piece_h, 10:40] > 0)
    foot = Candidate(40, foot_y, 15, piece_h, ink[foot_y : foot_y + piece_h, 40:55] > 0)
    for piece in (top, foot):
        piece.probs = _reads(7, 0.5, 0.05)  # a fragment reads as nothing much
    out = merge_checked([foot, top], 60.0, ink, _always(3, 0.9))
    assert (len(out) == 1) == merged
    if merged:
        assert (out[0].x, out[0].y, out[0].w, out[0].h) == (10, 5, 45, 2 * piece_h + 3)


@pytest.mark.parametrize("ring_ink", [0.8, 0.2])
def test_a_digit_joined_to_a_shadow_edge_is_cut_back_out(ring_ink: float) -> None:
    """A shadow's edge leaves a faint band of ink; a digit it touches makes one shape far
    too tall for a digit. The digit, drawn as firmly as the writing, comes back alone; a
    band with nothing as firm in it stays whole (for drop_noise to drop)."""
    from vision.segment import candidates_from_mask
    from vision.segment.filters import drop_noise, firm_parts_of_tall

    ink = np.zeros((200, 160), np.float32)
    cv2.circle(ink, (40, 40), 12, ring_ink, 4)  # a 0, 28 px tall, joined to ...
    cv2.line(ink, (40, 54), (60, 195), 0.2, 3)  # ... a faint band 150 px long
    for x in (80, 110):
        cv2.rectangle(ink, (x, 26), (x + 3, 54), 0.8, -1)  # two 1s: the writing
    cands = candidates_from_mask(ink > 0.1)
    assert max(c.h for c in cands) > 3 * 28  # the 0 is inside a tall shape

    out = drop_noise(firm_parts_of_tall(cands, 28.0, ink), 28.0, ink.shape)
    boxes = sorted((c.x, c.y, c.w, c.h) for c in out)
    if ring_ink > 0.5:
        assert len(out) == 3
        x, y, w, h = boxes[0]
        assert 26 <= x <= 28 and 26 <= y <= 28 and 26 <= w <= 30 and 26 <= h <= 30
    else:
        assert len(out) == 2  # the faint ring and band together are not the writing


def test_split_best_reuses_pieces_already_classified(reader, clear_digits) -> None:
    from vision.segment.candidates import candidates_from_mask
    from vision.segment.ink import ink_map, threshold_ink
    from vision.segment.split import split_best

    img = render("45", clear_digits, gap=-0.15, height=80)
    ink = ink_map(img)
    (shape,) = [c for c in candidates_from_mask(threshold_ink(ink)) if c.h > 40]
    assert shape.w > 1.2 * shape.h  # the two digits touch
    crops: list[int] = []

    def scorer(x: np.ndarray) -> np.ndarray:
        crops.append(len(x))
        return reader.classifier.classify(x)

    scored: dict = {}
    first = split_best(shape, ink, scorer, max_cuts=2, scored=scored)
    assert sum(crops) > 0
    crops.clear()
    again = split_best(shape, ink, scorer, max_cuts=2, scored=scored)
    assert crops == [] and [(p.x, p.w) for p in again] == [(p.x, p.w) for p in first]


@pytest.mark.parametrize("dropped", [0.05, 0.9])
def test_select_keeps_the_flagged_components(dropped: float) -> None:
    """Few dropped components are cleared in their boxes, many by a label lookup: the same."""
    from vision.segment.components import components, select

    rng = np.random.default_rng(5)
    mask = cv2.dilate((rng.random((120, 160)) < 0.01).astype(np.uint8), np.ones((3, 3), np.uint8))
    n, labels, stats = components(mask)
    assert n > 40
    keep = rng.random(n) >= dropped
    keep[0] = True  # the background is never selected, whatever its flag
    expected = np.isin(labels, np.nonzero(keep)[0]) & (labels > 0)
    assert np.array_equal(select(labels, stats, keep), expected)


def test_a_channel_in_which_the_pen_is_brighter_than_the_paper_is_left_out() -> None:
    """Red ink on blue paper is bright in the red channel; black ink and glare are not."""
    from vision.segment.ink import dark_ink_channels

    page = np.empty((200, 300, 3), np.uint8)
    page[:] = (230, 150, 120)  # blue paper (BGR)
    strokes = np.zeros((200, 300), bool)
    strokes[50:150, 40:46] = strokes[50:56, 40:120] = strokes[50:150, 200:206] = True
    page[strokes] = (60, 40, 220)  # a red pen
    kept = dark_ink_channels(cv2.split(page))
    assert [int(c[0, 0]) for c in kept] == [230, 150]  # blue and green: the pen is dark
    page[strokes] = (30, 30, 30)  # a black pen
    assert len(dark_ink_channels(cv2.split(page))) == 3
    white = np.full((200, 300, 3), 200, np.uint8)
    white[strokes] = 255  # glare brightens every channel alike
    assert len(dark_ink_channels(cv2.split(white))) == 3
    assert len(dark_ink_channels([white[:, :, 0]])) == 1


@pytest.mark.parametrize("step", [2, 7])
def test_components_count_every_shape_of_a_bool_or_uint8_mask(step: int) -> None:
    """Labels are 16-bit where they fit; 80,000 specks (step 2) need 32-bit ones, and
    both give every shape its own label, with its box and area."""
    grid = np.zeros((560, 1000), bool)
    grid[::step, ::step] = True
    shapes = grid.sum()
    assert (shapes > 65_535) == (step == 2)
    from vision.segment.components import components

    for mask in (grid, grid.astype(np.uint8) * 255):
        n, labels, stats = components(mask)
        assert n == shapes + 1
        assert np.array_equal(labels > 0, grid)
        assert (stats[1:, 2:] == 1).all()  # one pixel wide, high and large
        ys, xs = np.nonzero(grid)
        assert np.array_equal(stats[labels[ys, xs], :2], np.stack([xs, ys], axis=1))


def test_a_flat_stroke_read_as_one_is_the_least_likely_piece() -> None:
    """Cutting a 2's long base off reads the base as a "1": short and flat, it is both a
    fragment and no 1, and pays for both."""
    from vision.segment.split import _piece_prior

    whole = _solid(0, 0, 63, 42)
    base, tall = _solid(36, 29, 27, 13), _solid(40, 2, 8, 40)
    base.probs = tall.probs = _reads(1, 0.7, 0.03)
    assert _piece_prior(base, whole) == 2.0
    assert _piece_prior(tall, whole) == 0.0
    base.probs = _reads(2, 0.7, 0.03)
    assert _piece_prior(base, whole) == 0.5


def _sloped_line(x0: int, y0: int, slope: float, lefts: list[int], h: int = 40) -> list[Candidate]:
    """Digits 28 px wide whose centres lie on a straight line of `slope` (image rows down)."""
    out = []
    for x in lefts:
        cy = y0 + slope * (x + 14 - x0)
        out.append(_solid(x, round(cy - h / 2), 28, h))
    return out


def test_a_slanted_line_stays_one_line_across_the_gap_between_its_numbers() -> None:
    """A page photographed 12° askew: across a 90 px gap the line has climbed more than a
    fixed tolerance allows, but not more than its own slope predicts."""
    from vision.segment.layout import chain_lines

    slope = -np.tan(np.radians(12))
    first = _sloped_line(20, 300, slope, [20, 54, 88, 122])
    second = _sloped_line(20, 300, slope, [240, 274, 308, 342, 376])
    lines = chain_lines(second + first, 40.0)
    assert [len(line) for line in lines] == [9]
    assert [c.x for c in lines[0]] == [20, 54, 88, 122, 240, 274, 308, 342, 376]


def test_two_neighbouring_digits_do_not_set_a_slope_that_breaks_the_line() -> None:
    """Two digits written a little apart in height say little about the page's slant."""
    from vision.segment.layout import chain_lines

    wobble = [_solid(20, 100, 28, 40), _solid(54, 88, 28, 40)]  # 12 px higher: 19° if trusted
    rest = [_solid(x, 100, 28, 40) for x in (180, 214, 248)]
    lines = chain_lines(wobble + rest, 40.0)
    assert [len(line) for line in lines] == [5]


def test_slanted_lines_stay_apart() -> None:
    """Two lines 80 px apart, both 12° askew, chain into two lines in reading order."""
    from vision.segment.layout import chain_lines

    slope = np.tan(np.radians(12))
    lefts = [20, 54, 88, 200, 234, 268]
    top, bottom = _sloped_line(20, 100, slope, lefts), _sloped_line(20, 180, slope, lefts)
    lines = chain_lines(bottom + top, 40.0)
    assert [[c.y for c in line] for line in lines] == [
        [c.y for c in top],
        [c.y for c in bottom],
    ]


@pytest.mark.parametrize("degrees", [12, -12, 4, 0])
def test_page_lean_is_measured_on_the_lines(degrees: float) -> None:
    """Lines of three digits or more give the page's lean."""
    from vision.segment.layout import page_lean

    slope = -np.tan(np.radians(degrees))  # counter-clockwise as seen: rows grow downward
    lines = [_sloped_line(20, 100, slope, [20, 54, 88, 122]), [_solid(300, 300, 28, 40)]]
    assert page_lean(lines, 40.0) == pytest.approx(degrees, abs=0.5)
    assert page_lean([lines[0][:2], lines[1]], 40.0) == 0.0  # too short to tell


def _row(lefts: list[int], y: int = 100, w: int = 28, h: int = 40) -> list[Candidate]:
    return [_solid(x, y, w, h) for x in lefts]


def test_the_digit_gap_of_a_few_gaps_is_the_smallest() -> None:
    """Between three digits the lower quartile falls halfway into the gap between numbers."""
    from vision.segment.layout import digit_gap

    assert digit_gap([_row([0, 40, 150])]) == 12  # gaps 12 and 82: "66 1"
    assert digit_gap([_row([0, 40, 80, 120, 160, 300])]) == 12  # five gaps: the quartile
    assert digit_gap([_row([0])]) is None


def test_a_short_line_is_parted_by_the_pages_digit_gap() -> None:
    """'66 1': two gaps say little about the spacing; the page's other lines say more."""
    from vision.segment.layout import digit_gap, split_numbers

    short = _row([0, 40, 150], y=200)
    lines = [_row([0, 40, 80, 120, 160]), short]
    assert [len(n) for n in split_numbers(short)] == [3]  # alone: one number
    assert [len(n) for n in split_numbers(short, digit_gap(lines))] == [2, 1]
    tight = _row([0, 36, 72, 108, 144, 180])  # a long line keeps its own spacing
    assert [len(n) for n in split_numbers(tight, 40.0)] == [6]
