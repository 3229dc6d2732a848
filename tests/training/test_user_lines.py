"""Users' answered pictures cut into line-model training bands."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

import db
from training.data.fields import draw_field
from training.user_lines import edit_distance, pair_lines, picture_bands, text_lines
from vision.annotate import encode_png
from vision.line_model import LINE_HEIGHT
from vision.reader import DigitReader

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def _band(width: int) -> np.ndarray:
    return np.full((20, width), 255, np.uint8)


def test_text_lines_keep_lines_and_digits_only() -> None:
    assert text_lines("12 34\n5\n") == ["1234", "5"]
    assert text_lines("") == []


def test_edit_distance() -> None:
    assert edit_distance("", "") == 0
    assert edit_distance("1234", "1234") == 0
    assert edit_distance("1234", "11234") == 1
    assert edit_distance("12", "21") == 2
    assert edit_distance("", "77") == 2


def test_pair_lines_rules() -> None:
    a, b, c = _band(10), _band(20), _band(30)
    whole = _band(99)
    # As many lines as bands: in order.
    pairs = pair_lines([a, b], ["12", "3"], ["12", "34"], None)
    assert [(p[0].shape[1], p[1]) for p in pairs] == [(10, "12"), (20, "34")]
    # One line of text, three bands: the nearest reading holds it, the rest hold nothing.
    pairs = pair_lines([a, b, c], ["1111", "1204", "7"], ["1234"], None)
    assert [(p[0].shape[1], p[1]) for p in pairs] == [(10, ""), (20, "1234"), (30, "")]
    # Nothing found: the picture itself is the band.
    assert [(p[0].shape[1], p[1]) for p in pair_lines([], [], ["55"], whole)] == [(99, "55")]
    # Lines that cannot be matched, or no text: not used.
    assert pair_lines([a], [""], ["1", "2"], None) is None
    assert pair_lines([a, b], ["", ""], [], None) is None
    assert pair_lines([], [], ["1", "2"], whole) is None


def _picture(text: str, sha: str) -> db.LabelledPicture:
    return db.LabelledPicture(1, 1, db.Split.TRAIN, sha, text, T0)


def test_picture_bands_from_stored_pictures(tmp_path: Path, mnist) -> None:
    _, test = mnist
    reader = DigitReader.load()
    store = db.ImageStore(tmp_path / "images")
    field = draw_field(
        np.random.default_rng(3), (test.images, test.labels), background="plain", n_digits=5
    )
    stored = store.put(encode_png(field.image))
    blank = store.put(encode_png(np.full((60, 200, 3), 255, np.uint8)))
    pictures = [
        _picture(" ".join([field.text[:2], field.text[2:]]), stored.sha256),
        _picture("90", blank.sha256),  # nothing found: the user typed it
        _picture("1\n2", stored.sha256),  # two lines of text on a one-line picture
        _picture("3", "f" * 64),  # gone from the store
    ]
    bands, stats = picture_bands(pictures, reader, store)
    assert stats.to_dict() == {
        "pictures": 4,
        "used": 2,
        "bands": 2,
        "empty_bands": 0,
        "whole_pictures": 1,
        "unmatched": 1,
        "no_image": 1,
    }
    assert bands.texts == [field.text, "90"]
    assert all(b.shape[0] == LINE_HEIGHT and b.dtype == np.uint8 for b in bands.bands)
    # The field's band is the reader's: the line model reads it as the field's text.
    assert reader.lines.read([bands.bands[0]])[0].text == field.text


def test_texture_chained_into_a_line_of_its_own_is_labelled_empty(tmp_path: Path, mnist) -> None:
    """A picture whose segmentation finds two lines for a one-line text: the band read
    nearest the text holds it, the other band is a training sample holding no digit."""
    _, test = mnist
    reader = DigitReader.load()
    field = draw_field(
        np.random.default_rng(8), (test.images, test.labels), background="plain", n_digits=4
    )
    other = draw_field(
        np.random.default_rng(9), (test.images, test.labels), background="plain", n_digits=2
    )
    h, w = field.image.shape[:2]
    page = np.full((h * 3, w, 3), 255, np.uint8)
    page[:h] = field.image
    page[2 * h :] = cv2.resize(other.image, (w, h))  # more ink in a line below the number
    store = db.ImageStore(tmp_path / "images")
    stored = store.put(encode_png(page))
    bands, stats = picture_bands([_picture(field.text, stored.sha256)], reader, store)
    assert len(reader.line_bands(encode_png(page))) == 2
    assert stats.used == 1 and stats.bands == 2 and stats.empty_bands == 1
    assert bands.texts == [field.text, ""]  # top to bottom


def test_a_reader_without_a_line_model_cannot_cut(tmp_path: Path) -> None:
    plain = DigitReader.load(lines=None)
    with pytest.raises(ValueError, match="needs a reader with a line model"):
        picture_bands([], plain, db.ImageStore(tmp_path))
