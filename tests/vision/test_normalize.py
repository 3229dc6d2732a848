import cv2
import numpy as np
import pytest

from vision import normalize_digit
from vision.normalize import quantile, stroke_width


def _drawn_seven(size: int, thickness: int, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    img = np.zeros((size, size), np.uint8)
    ox, oy = offset
    s = size / 100
    pts = [(int((20 + ox) * s), int((15 + oy) * s)), (int((75 + ox) * s), int((15 + oy) * s))]
    cv2.line(img, pts[0], pts[1], 255, thickness)
    cv2.line(img, pts[1], (int((40 + ox) * s), int((90 + oy) * s)), 255, thickness)
    return img


def _com(img: np.ndarray) -> tuple[float, float]:
    total = img.astype(np.float64).sum()
    ys, xs = np.indices(img.shape)
    return float((ys * img).sum() / total), float((xs * img).sum() / total)


@pytest.mark.parametrize(("size", "thickness"), [(60, 2), (200, 6), (400, 30), (35, 1)])
def test_mnist_geometry(size: int, thickness: int) -> None:
    out = normalize_digit(_drawn_seven(size, thickness))
    assert out.shape == (28, 28) and out.dtype == np.uint8
    ys, xs = np.nonzero(out > 30)
    assert max(np.ptp(ys), np.ptp(xs)) + 1 <= 22  # fits MNIST's 20×20 box (anti-aliasing margin)
    assert max(np.ptp(ys), np.ptp(xs)) + 1 >= 17  # and fills it
    cy, cx = _com(out)
    assert abs(cy - 13.5) < 1.0 and abs(cx - 13.5) < 1.0  # centred by centre of mass
    assert out.max() >= 200 and len(np.unique(out)) > 10  # saturated core, anti-aliased edge


def test_stroke_width_is_brought_near_mnist(mnist) -> None:
    _, test = mnist
    mnist_width = np.median([stroke_width(img > 64) for img in test.images[:200]])
    for thickness in (2, 30):
        out = normalize_digit(_drawn_seven(400, thickness))
        assert abs(stroke_width(out > 64) - mnist_width) < 1.2


def test_position_does_not_matter() -> None:
    a = normalize_digit(_drawn_seven(200, 8))
    b = normalize_digit(np.pad(_drawn_seven(200, 8), ((50, 0), (0, 90))))
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 3


def test_empty_and_bad_input() -> None:
    assert not normalize_digit(np.zeros((40, 40), np.uint8)).any()
    with pytest.raises(ValueError, match="2-D"):
        normalize_digit(np.zeros((4, 4, 3), np.uint8))


def test_mnist_digits_are_nearly_fixed_points(mnist) -> None:
    """MNIST is already normalised: renormalising must not change it much."""
    _, test = mnist
    diffs = [
        np.abs(normalize_digit(img).astype(int) - img.astype(int)).mean()
        for img in test.images[:100]
    ]
    assert np.median(diffs) < 20


@pytest.mark.parametrize("n", [1, 2, 3, 10, 257, 4096])
def test_quantile_matches_numpy(n: int) -> None:
    values = np.random.default_rng(n).random(n).astype(np.float32)
    for q in (0.0, 0.5, 0.9, 1.0):
        assert quantile(values, q) == pytest.approx(float(np.percentile(values, 100 * q)))
