"""`digits bench thresholds`: which numbers count as hand-set."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.thresholds import count_segment_thresholds

MODULE = '''"""A docstring with 3 numbers: 0.5 and 7 are not code."""
import numpy as np

LIMIT = 0.35  # counts once, here


def f(image, cands, h):
    if image.ndim == 3 and image.shape[2] == 4:  # ranks and channels
        image = image[..., 0]
    small = [c for c in cands if c.h < 0.4 * h]  # counts
    for i in range(5):  # a loop bound
        pass
    guard = max(1e-9, h) / 2 + 1 - 0  # a guard and identities
    big = image[3:, :2] > 255  # slices and the uint8 range
    return small, LIMIT * h, np.arange(10), guard, big, 12  # 12 counts
'''


def test_only_hand_set_numbers_count(tmp_path: Path) -> None:
    (tmp_path / "step.py").write_text(MODULE)
    found = count_segment_thresholds(tmp_path)["step"]
    assert [(t.line, t.value) for t in found] == [(4, 0.35), (10, 0.4), (15, 12)]
    assert found[0].source == "LIMIT = 0.35  # counts once, here"


def test_the_command_counts_the_segmentation(capsys) -> None:
    from digits.cli import main

    assert main(["bench", "thresholds", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"filters", "split", "ink", "lines", "layout"} <= set(out["modules"])
    assert out["total"] == sum(out["modules"].values()) > 0
    assert main(["bench", "thresholds", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "RIM_ALIKE = 0.1" in listing and listing.rstrip().endswith(str(out["total"]))
