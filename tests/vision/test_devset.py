"""The real photos dev set, read end to end, with a floor on accuracy."""

from __future__ import annotations

from training.bench_read import Score, load_photo_labels


def test_real_photos_accuracy_floor(reader, devsets_dir) -> None:
    score = Score("real photos")
    for path, expected in load_photo_labels(devsets_dir):
        reading = reader.read(path.read_bytes())
        score.add(path.name, expected, reading.text, reading.elapsed_ms)
    summary = score.summary()
    assert summary["images"] == 122
    # Floors a little under the measured values: a regression fails, noise does not.
    assert summary["exact"] >= 0.90, score.failures
    assert summary["digit_accuracy"] >= 0.96, score.failures


def test_samples_are_read_right(reader) -> None:
    import csv
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "samples"
    with open(root / "expected.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) >= 6
    right = sum(reader.read((root / r["file"]).read_bytes()).text == r["text"] for r in rows)
    assert right >= 3
