"""The synthetic-photo generator behind `digits bench read`."""

from __future__ import annotations

import numpy as np

from training.synth import generate_photo


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

    from training.synth import write_samples

    _, test = mnist
    write_samples(tmp_path, test)
    committed = Path(__file__).resolve().parents[2] / "samples"
    assert (tmp_path / "expected.csv").read_text() == (committed / "expected.csv").read_text()
    assert sorted(p.name for p in tmp_path.glob("*.jpg")) == sorted(
        p.name for p in committed.glob("*.jpg")
    )
