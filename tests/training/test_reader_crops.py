"""Reader-cut training crops: drawn digits, box matching, the crop set file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from training.data.reader_crops import CropSet, draw_cell, draw_page, make_crops, match_crops


@pytest.fixture(scope="module")
def pool(mnist_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    from training.data.mnist import load_mnist

    train, _ = load_mnist(mnist_dir, allow_download=False)
    return train.images[:500], train.labels[:500]


@pytest.mark.parametrize("draw", [draw_page, draw_cell])
def test_drawn_boxes_hold_the_ink(pool, draw) -> None:
    data, boxes = draw(np.random.default_rng(3), pool)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert boxes and all(0 <= b[4] <= 9 for b in boxes)
    paper = float(np.median(img))
    for x0, y0, x1, y1, _ in boxes:
        inside = img[int(y0) : int(np.ceil(y1)), int(x0) : int(np.ceil(x1))]
        assert inside.min() < paper - 40  # a pen stroke in every box


def test_match_keeps_whole_digits_only() -> None:
    drawn = [(0, 0, 10, 20, 3), (14, 0, 24, 20, 8)]
    crop = np.zeros((28, 28), np.uint8)
    found = [
        ((0, 0, 10, 20), crop),  # digit 3 exactly
        ((15, 1, 9, 18), crop),  # digit 8, a little tight
        ((0, 0, 24, 20), crop),  # both digits as one shape
        ((0, 10, 10, 10), crop),  # the lower half of the 3
    ]
    assert [label for _, label in match_crops(found, drawn)] == [3, 8]


def test_crop_set_round_trip_and_bad_file(tmp_path: Path) -> None:
    crops = CropSet(np.zeros((3, 28, 28), np.uint8), np.array([1, 2, 3]), drawn=4)
    crops.save(tmp_path / "c.npz")
    back = CropSet.load(tmp_path / "c.npz")
    assert (
        back.labels.tolist() == [1, 2, 3] and back.drawn == 4 and back.images.shape == (3, 28, 28)
    )
    np.savez(tmp_path / "bad.npz", images=np.zeros((3, 8)), labels=np.zeros(3), drawn=3)
    with pytest.raises(ValueError, match="not a crop set"):
        CropSet.load(tmp_path / "bad.npz")


@pytest.mark.slow
def test_make_crops_labels_what_the_reader_cut(pool) -> None:
    crops = make_crops(pool, pages=2, cells=6, seed=1, workers=1)
    assert crops.images.shape[1:] == (28, 28) and len(crops.labels) <= crops.drawn
    assert len(crops.labels) > 0.6 * crops.drawn  # most drawn digits are cut whole
    from vision import DigitClassifier

    read = DigitClassifier.load().classify(crops.images).argmax(1)
    assert (read == crops.labels).mean() > 0.9  # the labels are the drawn digits'
