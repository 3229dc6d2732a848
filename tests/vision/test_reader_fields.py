"""The reader on numbers cut from forms, one test image per failure category and seed.

Issue 23's categories, drawn by `training.data.fields` from MNIST *test* digits (the
segmenter's "not one digit" crops come from MNIST train digits), each with its answer.
Images the reader still misreads are marked xfail(strict=True) with what goes wrong, so
a fix that reads them flips the mark and fails here until it is removed. The line model
(`vision.fit_lines`) reads the walls, separators, printed boxes and shadow edges right;
what is left is guilloche texture that the segmentation chains into lines of its own.
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
    ("guilloche background", 1): "the texture splits the number into six lines",
    ("guilloche background", 2): "the texture splits the number into five lines",
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
