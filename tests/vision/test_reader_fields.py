"""The reader on numbers cut from forms, one test image per failure category and seed.

Issue 23's categories, drawn by `training.data.fields` from MNIST *test* digits (the
segmenter's "not one digit" crops come from MNIST train digits), each with its answer.
Images the reader still misreads are marked xfail(strict=True) with what goes wrong, so
a fix that reads them flips the mark and fails here until it is removed.
"""

from __future__ import annotations

import numpy as np
import pytest

from training.data.fields import draw_field

# category -> draw_field keywords
CATEGORIES: dict[str, dict] = {
    "border at the crop's edge": {"background": "edges", "labels": [1, 4, 0, 0]},
    "box around the number, leading 1": {"background": "box", "labels": [1, 5, 4]},
    "walls between boxed digits": {"background": "cells", "n_digits": 6},
    "printed box inside each box": {"background": "nested", "n_digits": 3},
    "separators between groups": {"background": "plain", "n_digits": 7, "separators": True},
    "guilloche background": {"background": "guilloche", "n_digits": 5},
    "European 1 and crossed 7": {
        "background": "plain",
        "labels": [1, 7, 8, 9, 1, 7],
        "european": 1.0,
    },
    "tiny digits": {"background": "ruled", "n_digits": 5, "digit_h": 16},
}
SEEDS = (0, 1, 2)

# (category, seed) -> what the reader reads wrong today.
XFAIL: dict[tuple[str, int], str] = {
    ("border at the crop's edge", 1): "the left wall at the edge read as a 1 (14100)",
    ("border at the crop's edge", 2): "the left wall at the edge read as a 1 (11400)",
    ("box around the number, leading 1", 1): "the box's wall read as a 1, the 5 as 7 (1734)",
    ("walls between boxed digits", 0): "a wall between cells read as a 1 (1111097)",
    ("printed box inside each box", 0): "the printed inner boxes' walls read as 1s (11111)",
    ("separators between groups", 1): "a colon's dot lost a 9 to a 2 (2111622)",
    ("separators between groups", 2): "the slashes read as 1s (012411605)",
    ("guilloche background", 0): "the texture read as digits (154411)",
    ("guilloche background", 1): "the texture read as dozens of digits",
    ("guilloche background", 2): "the texture read as dozens of digits",
    ("tiny digits", 1): "a shadow's edge read as a leading 1 (150111)",
}


def _cases():
    for name in CATEGORIES:
        for seed in SEEDS:
            reason = XFAIL.get((name, seed))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            yield pytest.param(name, seed, marks=marks, id=f"{name}-{seed}")


@pytest.fixture(scope="module")
def test_pool(mnist) -> tuple[np.ndarray, np.ndarray]:
    _, test = mnist
    return test.images, test.labels


@pytest.mark.parametrize(("category", "seed"), list(_cases()))
def test_reads_a_number_cut_from_a_form(reader, test_pool, category: str, seed: int) -> None:
    field = draw_field(np.random.default_rng([23, seed]), test_pool, **CATEGORIES[category])
    got = "".join(ch for ch in reader.read(field.image).text if ch.isdigit())
    assert got == field.text
