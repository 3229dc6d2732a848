"""The line model and how the reader fits its cuts to it."""

from __future__ import annotations

import numpy as np
import pytest

from training.data.fields import draw_field
from vision.checkpoint import CheckpointError
from vision.classifier import DEFAULT_MODEL_PATH, DigitClassifier
from vision.fit_lines import align, fit_lines
from vision.line_model import BLANK, LINE_STRIDE, normalize_line
from vision.line_reader import LINE_MODEL_PATH, LineRead, LineReader, best_path
from vision.segment import Candidate, Segmentation


@pytest.fixture(scope="module")
def lines() -> LineReader:
    return LineReader.load()


def _log_probs(path: list[int]) -> np.ndarray:
    """[T, 11] log-probabilities whose best path is `path` (0.9 on it)."""
    p = np.full((len(path), BLANK + 1), 0.01)
    p[np.arange(len(path)), path] = 0.9
    return np.log(p / p.sum(1, keepdims=True))


def test_best_path_collapses_repeats_and_blanks() -> None:
    b = BLANK
    read = best_path(_log_probs([b, 1, 1, b, 1, b, 7, 7, 0, b]), scale=2.0)
    assert read.text == "1170"
    # a digit sits at its first frame: (t + 0.5) * stride * scale band pixels
    np.testing.assert_allclose(read.centres, (np.array([1, 4, 6, 8]) + 0.5) * LINE_STRIDE * 2)
    np.testing.assert_allclose(read.probs.sum(1), 1.0, rtol=1e-6)
    assert read.probs[0].argmax() == 1 and read.probs[-1].argmax() == 0
    assert best_path(_log_probs([b, b]), scale=1.0).text == ""


def test_align_matches_by_position_and_leaves_out_the_rest() -> None:
    assert align([10, 30, 50], [11, 29, 52], height=20) == [0, 1, 2]
    # a wall at x=20 between two digits: no digit read there, so it matches nothing
    assert align([10, 20, 30], [10, 30], height=20) == [0, 2]
    # a digit read where no shape is: -1
    assert align([10, 50], [10, 30, 50], height=20) == [0, -1, 1]
    assert align([], [5], height=10) == [-1]
    assert align([5], [], height=10) == []


def test_normalize_line_makes_ink_positive_whatever_its_colour() -> None:
    band = np.full((32, 64), 220, np.uint8)
    band[8:24, 20:24] = 30  # a dark stroke
    dark_ink = normalize_line(band)
    light_ink = normalize_line(255 - band)
    assert dark_ink[16, 22] > 0.9 and abs(dark_ink[2, 2]) < 0.1
    np.testing.assert_allclose(dark_ink, light_ink, atol=1e-5)


def test_the_shipped_line_model_loads_and_a_classifier_does_not_pass_for_one(lines) -> None:
    assert lines.info["kind"] == "line"
    assert lines.version
    with pytest.raises(CheckpointError, match="not a line model"):
        LineReader.load(DEFAULT_MODEL_PATH)
    with pytest.raises(CheckpointError, match="is a line model"):
        DigitClassifier.load(LINE_MODEL_PATH)


def test_reads_numbers_cut_from_forms(lines, mnist) -> None:
    _, test = mnist
    rng = np.random.default_rng(5)
    fields = [draw_field(rng, (test.images, test.labels), background="box") for _ in range(20)]
    reads = lines.read([f.image for f in fields])
    hits = sum(r.text == f.text for r, f in zip(reads, fields, strict=True))
    assert hits >= 16, [(r.text, f.text) for r, f in zip(reads, fields, strict=True)]


def test_a_band_reads_the_same_alone_and_beside_a_longer_one(lines, mnist) -> None:
    _, test = mnist
    rng = np.random.default_rng(8)
    short = draw_field(rng, (test.images, test.labels), n_digits=2).image
    long = draw_field(rng, (test.images, test.labels), n_digits=10).image
    alone = lines.read([short])[0]
    batched = lines.read([long, short])[1]
    assert alone.text == batched.text
    np.testing.assert_allclose(alone.probs, batched.probs, atol=1e-4)
    np.testing.assert_allclose(alone.centres, batched.centres)


class _Fixed:
    """A line model that reads what it is told: fit_lines' logic, not the model, is tested."""

    def __init__(self, text: str, centres: list[float]) -> None:
        probs = np.full((len(text), 10), 0.01, np.float32)
        for i, ch in enumerate(text):
            probs[i, int(ch)] = 0.91
        self.read_ = LineRead(text, np.array(centres, float), probs)

    def read(self, bands: list[np.ndarray]) -> list[LineRead]:
        return [self.read_ for _ in bands]


def _shape(x: int, w: int = 8, h: int = 20) -> Candidate:
    mask = np.zeros((h, w), bool)
    mask[:, w // 2 - 1 : w // 2 + 1] = True
    return Candidate(x, 10, w, h, mask)


def _seg(xs: list[int]) -> Segmentation:
    ink = np.zeros((40, 200), np.float32)
    mask = np.zeros((40, 200), bool)
    shapes = [_shape(x) for x in xs]
    for c in shapes:
        mask[c.y : c.y2, c.x : c.x2] |= c.mask
        ink[c.y : c.y2, c.x : c.x2] += c.mask
    return Segmentation([[shapes]], 1.0, ink, mask)


def _scorer(crops: np.ndarray) -> np.ndarray:
    out = np.full((len(crops), 10), 0.02, np.float32)
    out[:, 1] = 0.82
    return out


def test_a_shape_the_line_model_does_not_read_is_dropped() -> None:
    seg = _seg([10, 40, 70])  # the middle shape: a wall between two digits
    image = np.zeros((40, 200), np.uint8)
    # band: x0 = 10 - 0.6 * 20 -> 0, so band centres are image x
    fitted = fit_lines(seg, image, _Fixed("17", [14, 74]), _scorer)
    kept = [c.x for c in fitted.digits]
    assert kept == [10, 70]
    assert [int(np.argmax(c.line_probs)) for c in fitted.digits] == [1, 7]


def test_a_digit_read_where_no_shape_was_kept_is_cut_from_the_mask() -> None:
    seg = _seg([10, 70])
    seg.mask[10:30, 43:45] = True  # ink the segmentation dropped (say, as noise)
    seg.ink[10:30, 43:45] = 1.0
    fitted = fit_lines(seg, np.zeros((40, 200), np.uint8), _Fixed("141", [14, 44, 74]), _scorer)
    assert [c.x for c in fitted.digits] == [10, 43, 70]
    assert all(c.crop is not None and c.probs is not None for c in fitted.digits)


def test_a_page_read_without_lines_is_left_alone() -> None:
    seg = _seg([10, 40])
    seg.lean = 7.0
    assert fit_lines(seg, np.zeros((40, 200), np.uint8), _Fixed("", []), _scorer) is seg


def test_reader_uses_the_line_model_and_can_go_without(reader, mnist) -> None:
    from vision import DigitReader

    _, test = mnist
    field = draw_field(
        np.random.default_rng([23, 0]), (test.images, test.labels), background="cells", n_digits=6
    )
    plain = DigitReader(reader.classifier, segmenter=reader.segmenter, lines=None)
    assert reader.lines is not None
    assert reader.read(field.image).text.replace(" ", "") == field.text
    assert plain.read(field.image).text.replace(" ", "") != field.text  # walls read as 1s
    assert reader.with_classifier(reader.classifier).lines is reader.lines


@pytest.mark.parametrize("seed", [0, 2, 5])
@pytest.mark.parametrize("angle", [12, -12])
def test_a_page_askew_is_turned_level_and_read_with_the_line_model(
    reader, mnist, monkeypatch, seed: int, angle: float
) -> None:
    """Boxed digits photographed 12° askew: the writing is turned level and segmented
    again, so the line model reads a level band and drops the walls; each digit's box
    comes back where the digit is in the picture as sent, and the loop gets the band."""
    import cv2

    _, test = mnist
    field = draw_field(
        np.random.default_rng([23, seed]),
        (test.images, test.labels),
        background="cells",
        n_digits=6,
    )
    pad = field.image.shape[1] // 2
    paper = cv2.copyMakeBorder(field.image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    h, w = paper.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    askew = cv2.warpAffine(paper, m, (w, h), borderMode=cv2.BORDER_REPLICATE)

    bands: list[np.ndarray] = []
    read_bands = reader.lines.read
    monkeypatch.setattr(reader.lines, "read", lambda b: bands.extend(b) or read_bands(b))
    reading = reader.read(askew)
    assert reading.text.replace(" ", "") == field.text
    (band,) = bands
    assert band.shape[1] > 3 * band.shape[0]  # one level line, not a slanted slab
    drawn = np.array(
        [[(x0 + x1) / 2 + pad, (y0 + y1) / 2 + pad] for x0, y0, x1, y1, _ in field.boxes]
    )
    where = drawn @ m[:, :2].T + m[:, 2]  # the digits' centres in the askew picture
    got = np.array([[x + bw / 2, y + bh / 2] for x, y, bw, bh in (d.box for d in reading.digits)])
    digit_h = np.median([y1 - y0 for _, y0, _, y1, _ in field.boxes])
    assert np.abs(got - where).max() < 0.25 * digit_h
    assert [b.shape for b in reader.line_bands(askew)] == [band.shape]


def test_lines_sharing_most_of_their_height_are_read_as_one() -> None:
    """Texture made the chaining start a second line beside the first: one band, one line."""
    seg = _seg([10, 40, 70])
    first, second = [seg.lines[0][0][:2]], [[seg.lines[0][0][2]]]
    seg.lines = [first, second]
    fitted = fit_lines(seg, np.zeros((40, 200), np.uint8), _Fixed("141", [14, 44, 74]), _scorer)
    assert len(fitted.lines) == 1
    assert [c.x for c in fitted.digits] == [10, 40, 70]


def test_lines_one_above_the_other_stay_apart() -> None:
    seg = _seg([10, 40])
    lower = _shape(10)
    lower.y = 40  # a second line of writing, below the first
    seg.mask = np.zeros((80, 200), bool)
    seg.ink = np.zeros((80, 200), np.float32)
    seg.lines = [seg.lines[0], [[lower]]]
    fitted = fit_lines(seg, np.zeros((80, 200), np.uint8), _Fixed("1", [14]), _scorer)
    assert len(fitted.lines) == 2
