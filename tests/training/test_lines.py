"""The line model's training step, end to end on a tiny dataset, and its data."""

from __future__ import annotations

import numpy as np
import torch

from training.data.lines import LineSet, draw_lines, photo_line
from training.lines import LineTrainConfig, save_lines, train_lines
from vision.line_model import LINE_HEIGHT, LINE_STRIDE, LineConfig
from vision.line_reader import LineReader


def _pool(mnist):
    train, _ = mnist
    return train.images[:2000], train.labels[:2000]


def test_drawn_bands_fit_the_model_and_carry_their_text(mnist, tmp_path) -> None:
    lines = draw_lines(_pool(mnist), 40, seed=3, photo_share=0.5)
    assert len(lines) == 40
    for band, text in zip(lines.bands, lines.texts, strict=True):
        assert band.dtype == np.uint8 and band.shape[0] == LINE_HEIGHT
        assert text.isdigit()
        assert band.shape[1] // LINE_STRIDE >= 2 * len(text) + 1  # CTC can emit every digit
    again = draw_lines(_pool(mnist), 40, seed=3, photo_share=0.5)
    assert again.texts == lines.texts  # seeded
    path = tmp_path / "lines.npz"
    lines.save(str(path))
    loaded = LineSet.load(str(path))
    assert loaded.texts == lines.texts
    assert all(np.array_equal(a, b) for a, b in zip(loaded.bands, lines.bands, strict=True))


def test_a_photo_line_holds_its_digits(mnist) -> None:
    image, text = photo_line(np.random.default_rng(1), _pool(mnist))
    assert image.ndim == 3 and text.isdigit()
    assert image.shape[1] > image.shape[0]


def test_training_runs_end_to_end_and_saves_a_plain_checkpoint(mnist, tmp_path) -> None:
    train = draw_lines(_pool(mnist), 64, seed=0)
    test = draw_lines(_pool(mnist), 16, seed=1)
    config = LineTrainConfig(
        steps=6, batch_size=16, warmup_steps=2, model=LineConfig((8, 8, 8, 8), 8)
    )
    result = train_lines(config, train, test, progress=False)
    assert 0.0 <= result.exact <= 1.0
    assert result.history and np.isfinite(result.history[0]["loss"])
    path = tmp_path / "lines.pt"
    sha = save_lines(path, result, version="tiny")
    body = torch.load(path, weights_only=True)  # tensors and plain values only
    assert body["kind"] == "line" and body["train_config"]["steps"] == 6
    reader = LineReader.load(path)
    assert reader.sha256 == sha and reader.version == "tiny"
    assert len(reader.read([test.bands[0]])) == 1
    # fine-tuning starts from the saved weights
    tuned = train_lines(config, train, test, init=body["state_dict"], progress=False)
    assert not torch.equal(tuned.model.head.weight, LineReader.load(path).model.head.weight)
