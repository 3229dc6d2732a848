"""The synthetic-photo generator behind `digits bench read`."""

from __future__ import annotations

import numpy as np

from training.data.synth import generate_photo


def _pool(mnist) -> tuple[np.ndarray, np.ndarray]:
    _, test = mnist
    return test.images[:3000], test.labels[:3000]


def test_sources_name_the_digits_of_the_expected_text(mnist) -> None:
    pool = _pool(mnist)
    rng = np.random.default_rng(7)
    for _ in range(8):
        sources: list[int] = []
        img, text = generate_photo(rng, pool, sources)
        assert img.dtype == np.uint8 and img.ndim == 3
        digits = "".join(ch for ch in text if ch.isdigit())
        assert "".join(str(int(pool[1][i])) for i in sources) == digits


def test_same_seed_same_photo(mnist) -> None:
    pool = _pool(mnist)
    a_img, a_text = generate_photo(np.random.default_rng(3), pool)
    b_img, b_text = generate_photo(np.random.default_rng(3), pool)
    assert a_text == b_text and np.array_equal(a_img, b_img)


def test_committed_samples_are_what_the_generator_makes(mnist, tmp_path) -> None:
    """`digits samples` rebuilds samples/: the same numbers in the same photos."""
    from pathlib import Path

    from training.data.synth import write_samples

    _, test = mnist
    write_samples(tmp_path, test)
    committed = Path(__file__).resolve().parents[2] / "samples"
    assert (tmp_path / "expected.csv").read_text() == (committed / "expected.csv").read_text()
    assert sorted(p.name for p in tmp_path.glob("*.jpg")) == sorted(
        p.name for p in committed.glob("*.jpg")
    )


def test_a_drawn_digit_stays_in_the_pieces_mnist_drew_it_in(mnist) -> None:
    """A pen's stroke does not break where MNIST's grey thins out: sharpening and thinning
    a digit to a pen's width must not part it (one digit in ten used to come out dotted
    or in parts, which the reader was then blamed for)."""
    import cv2

    from training.data.synth import _pieces, digit_alpha

    _, test = mnist
    rng = np.random.default_rng(11)
    broken = 0
    for idx in rng.choice(len(test.images), 400, replace=False):
        img28 = test.images[idx]
        height = int(rng.integers(24, 250))
        alpha = digit_alpha(img28, height, rng)
        ys, xs = np.nonzero(img28 > 30)
        crop = img28[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32)
        drawn = cv2.resize(crop / 255.0, alpha.shape[::-1], interpolation=cv2.INTER_CUBIC)
        broken += _pieces(alpha > 0.5) > _pieces(drawn > 30 / 255)
    assert broken <= 2, broken  # a few thin MNIST joins are fainter than any pen
