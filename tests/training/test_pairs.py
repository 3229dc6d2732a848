"""The segmenter's "not one digit" class: touching pairs, a widened head, `digits train --pairs`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from training.data.pairs import draw_pair, touching_pairs
from training.train import NEW_CLASS_BIAS, widen_head
from vision import DigitClassifier
from vision.classifier import DEFAULT_MODEL_PATH
from vision.model import DigitNet, ModelConfig


def _shape(rows: slice, cols: slice) -> np.ndarray:
    img = np.zeros((28, 28), np.uint8)
    img[rows, cols] = 255
    return img


def test_touching_pairs_are_normalised_crops_and_seeded(mnist) -> None:
    train, _ = mnist
    images, labels = train.images[:2000], train.labels[:2000]
    pairs = touching_pairs(images, labels, 12, seed=5, progress=False)
    assert pairs.shape == (12, 28, 28) and pairs.dtype == np.uint8
    assert (pairs.reshape(12, -1).max(1) >= 240).all()  # saturated strokes, as MNIST
    # Fitted into MNIST's 20×20 box like any digit the reader cuts: wider than tall, a
    # pair fills the box's width.
    cols = (pairs > 64).any(1).sum(1)
    assert np.median(cols) >= 18
    assert np.array_equal(pairs, touching_pairs(images, labels, 12, seed=5, progress=False))


def test_a_pair_that_does_not_touch_is_not_drawn() -> None:
    rng = np.random.default_rng(0)
    bar = _shape(slice(4, 24), slice(12, 16))
    assert draw_pair(bar, bar, rng) is not None  # two full-height bars always touch
    # Ink only at the top right of the first and at the bottom left of the second.
    gamma = np.maximum(_shape(slice(4, 8), slice(6, 22)), _shape(slice(4, 24), slice(6, 10)))
    foot = np.maximum(_shape(slice(20, 24), slice(6, 22)), _shape(slice(4, 24), slice(18, 22)))
    assert all(draw_pair(gamma, foot, rng) is None for _ in range(20))


def test_widen_head_keeps_the_digits_and_starts_the_new_class_silent() -> None:
    torch.manual_seed(0)
    old = DigitNet().state_dict()
    model = DigitNet(ModelConfig(classes=11))
    state = widen_head(old, model)
    model.load_state_dict(state)
    assert torch.equal(state["head.5.weight"][:10], old["head.5.weight"])
    assert torch.equal(state["head.5.bias"][:10], old["head.5.bias"])
    assert not state["head.5.weight"][10].any() and state["head.5.bias"][10] == NEW_CLASS_BIAS
    assert widen_head(old, DigitNet())["head.5.weight"] is old["head.5.weight"]
    with pytest.raises(ValueError, match="cannot start"):
        widen_head(DigitNet(ModelConfig(classes=11)).state_dict(), DigitNet())


@pytest.mark.slow
def test_train_with_pairs_writes_an_eleven_class_checkpoint(
    mnist_dir: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    from digits.cli import main

    monkeypatch.setenv("DIGITS_MNIST_DIR", str(mnist_dir))
    out = tmp_path / "seg.pt"
    args = ["train", "--init", str(DEFAULT_MODEL_PATH), "--limit", "256", "--epochs", "1"]
    args += ["--pairs", "64", "--multi-weight", "0.2", "--threads", "1", "--out", str(out)]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["checkpoint"] == str(out)
    seg = DigitClassifier.load(out, device="cpu")
    assert seg.info["model_config"]["classes"] == 11 and seg.multi_weight == pytest.approx(0.2)
    assert seg.info["summary"]["data"]["touching_pairs"] == 64
    assert seg.classify(np.zeros((3, 28, 28), np.uint8)).shape == (3, 10)
    # Fine-tuning an 11-class model without its pairs would silently drop the class.
    with pytest.raises(SystemExit, match="pair class"):
        main(["train", "--init", str(out), "--limit", "64", "--epochs", "1", "--out", str(out)])
