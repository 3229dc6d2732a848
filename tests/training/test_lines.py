"""The line model's training step, end to end on a tiny dataset, and its data."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from serving.model_swap import load_reader, shipped_lines, shipped_segmenter
from training.data.fields import Field, draw_field
from training.data.lines import (
    FieldKinds,
    LineSet,
    draw_band,
    draw_lines,
    empty_bands,
    jitter_band,
    photo_line,
)
from training.lines import LineTrainConfig, carry_lines, save_lines, train_lines
from vision.classifier import DEFAULT_MODEL_PATH, SEGMENTER_MODEL_PATH, DigitClassifier
from vision.line_model import LINE_HEIGHT, LINE_STRIDE, LineConfig
from vision.line_reader import LineReader
from vision.reader import DigitReader


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

    # A classifier carrying this line model is one version: it reads with it.
    version = tmp_path / "version.pt"
    carry_lines(DEFAULT_MODEL_PATH, path, version)
    assert torch.load(version, weights_only=True)["lines"]["kind"] == "line"
    reader = DigitReader.load(version)
    assert reader.lines is not None and reader.lines.version == "tiny"
    assert reader.classifier.info["line_model"] == "tiny"
    assert reader.classifier.version == "mnist-reader-v1+tiny"
    assert "lines" not in reader.classifier.info
    assert DigitReader.load(DEFAULT_MODEL_PATH).lines.version == LineReader.load().version
    assert DigitReader.load(version, lines=None).lines is None
    served = load_reader(version)  # the bot and the web app read with it too
    assert served.lines.version == "tiny" and served.segmenter is shipped_segmenter(1)
    assert load_reader(None).lines is shipped_lines(1)


def test_narrowed_field_kinds_hold_a_condition_out(mnist) -> None:
    kinds = FieldKinds(("plain", "ruled"), separators=False, european=0.0)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(60):
        band, text = draw_band(rng, _pool(mnist), 0.0, kinds)
        assert band.shape[0] == LINE_HEIGHT and text.isdigit()  # no separator in the text
        seen.add(text)
    assert len(seen) > 50


def test_a_line_holding_none_of_the_digits_is_an_empty_band(mnist) -> None:
    """Ink the segmentation chains into a line of its own below the number (texture, a
    second scribble) gives a band labelled empty; the number's own line gives none."""
    field = draw_field(
        np.random.default_rng(8), _pool(mnist), background="plain", n_digits=4, separators=False
    )
    scorer = DigitClassifier.load(SEGMENTER_MODEL_PATH).classify
    assert empty_bands(field, scorer) == []
    other = draw_field(np.random.default_rng(9), _pool(mnist), background="plain", n_digits=2)
    h, w = field.image.shape[:2]
    page = np.full((h * 3, w, 3), 255, np.uint8)
    page[:h] = field.image
    page[2 * h :] = cv2.resize(other.image, (w, h))
    below = Field(page, field.text, field.boxes, "plain")
    (band,) = empty_bands(below, scorer)
    assert band.shape[0] == LINE_HEIGHT and band.dtype == np.uint8


def test_a_jittered_band_is_another_cut_of_the_same_band() -> None:
    rng = np.random.default_rng(0)
    band = np.full((LINE_HEIGHT, 120), 230, np.uint8)
    band[8:24, 10:110] = 20  # ink across the band
    cuts = [jitter_band(band, "1234", rng) for _ in range(20)]
    assert all(c.shape[0] == LINE_HEIGHT and c.dtype == np.uint8 for c in cuts)
    assert len({c.shape[1] for c in cuts}) > 5  # stretched and trimmed differently
    assert all(c.shape[1] // LINE_STRIDE >= 2 * 4 + 1 for c in cuts)  # CTC still fits
    assert all(c.min() < 80 and c.max() > 150 for c in cuts)  # ink and paper both kept
    narrow = jitter_band(np.zeros((LINE_HEIGHT, 6), np.uint8), "55", rng)
    assert narrow.shape[1] // LINE_STRIDE >= 2 * 2 + 1
