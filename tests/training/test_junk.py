"""The junk filter's training step, end to end on a tiny dataset, and its checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from digits.cli import main
from training.junk import fit_junk_filter
from vision.segment.junk import FEATURES, JunkFilter


def test_fit_separates_what_is_separable() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (400, len(FEATURES))).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 3] > 0.8).astype(np.int64)  # tall, near the frame: junk
    model = fit_junk_filter(x, y, steps=800)
    predicted = model.probability(x) >= 0.5
    assert (predicted == y.astype(bool)).mean() > 0.95
    with pytest.raises(ValueError, match="both junk and digit"):
        fit_junk_filter(x, np.zeros(len(x), np.int64))


def test_train_junk_runs_end_to_end_and_writes_a_weights_only_checkpoint(
    mnist_dir, tmp_path, capsys
) -> None:
    out = tmp_path / "junk.pt"
    args = ["train-junk", "--fields", "24", "--workers", "1", "--out", str(out)]
    assert main([*args, "--mnist-dir", str(mnist_dir)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] > 24 and 0 < summary["junk_rows"] < summary["rows"]
    body = torch.load(out, map_location="cpu", weights_only=True)
    assert body["model_config"]["features"] == list(FEATURES)
    model = JunkFilter.load(out)
    assert model.weight.shape == (len(FEATURES),) and 0 < model.threshold < 1
    assert model.probability(np.zeros((3, len(FEATURES)), np.float32)).shape == (3,)


def test_the_shipped_junk_filter_loads() -> None:
    model = JunkFilter.load()
    assert np.isfinite(model.weight).all() and model.scale.min() > 0
