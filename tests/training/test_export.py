"""`digits export`: every format loads back identical; writers are pseudonymised."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from loop_fixtures import populate, sqlite_url

import db
from benchmarks.loop import BASE_TELEGRAM_ID
from digits.cli import main
from training.data.devsets import load_usps
from training.export import FORMATS, ExportError, collect, export, load, pseudonym


@pytest.fixture(scope="module")
def url(tmp_path_factory, devsets_dir: Path) -> str:
    usps = load_usps(devsets_dir, "test")
    url = sqlite_url(tmp_path_factory.mktemp("export") / "data")
    populate(url, usps.images[:400], usps.labels[:400], users=10, per_reading=5)
    engine = db.make_engine(url)
    with db.session_scope(db.make_session_factory(engine)) as session:
        db.set_training_consent(session, BASE_TELEGRAM_ID + 8, False)
        db.set_blocked(session, BASE_TELEGRAM_ID + 9, True)
    engine.dispose()
    return url


def _collect(url: str, **kwargs):
    engine = db.make_engine(url)
    try:
        with db.session_scope(db.make_session_factory(engine)) as session:
            return collect(session, **{"salt": "s1", "holdout_fraction": 0.2, **kwargs})
    finally:
        engine.dispose()


def test_every_format_round_trips(url: str, tmp_path: Path) -> None:
    ds = _collect(url)
    assert len(ds.train.labels) > 0 and len(ds.test.labels) > 0
    assert len(ds) == 320  # 8 of 10 users: one withdrew consent, one is blocked
    out = export(ds, tmp_path / "export", list(FORMATS))
    for fmt in FORMATS:
        back = load(out, fmt)
        for name in ("train", "test"):
            images, labels = back[name]
            np.testing.assert_array_equal(images, ds.split(name).images, err_msg=fmt)
            np.testing.assert_array_equal(labels, ds.split(name).labels, err_msg=fmt)
            assert images.dtype == np.uint8 and images.shape[1:] == (28, 28)
    import pyarrow.parquet as pq

    meta = json.loads(pq.read_schema(out / "parquet" / "train.parquet").metadata[b"huggingface"])
    assert meta["info"]["features"]["image"] == {"_type": "Image"}
    sheet = (out / "README.md").read_text()
    assert "| 0 |" in sheet and "Licence" in sheet and "split by writer" in sheet
    assert f"digits: {len(ds)}" in sheet
    with pytest.raises(ExportError, match="already exists"):
        export(ds, out, ["npz"])
    # The exported digits are exactly the eligible stored ones.
    engine = db.make_engine(url)
    with db.session_scope(db.make_session_factory(engine)) as session:
        stored = sorted(d.crop for d in db.labelled_digits(session, holdout_fraction=0.2))
    engine.dispose()
    exported = sorted(img.tobytes() for img in np.concatenate([ds.train.images, ds.test.images]))
    assert exported == stored


def test_writers_are_pseudonymous_and_split_by_writer(url: str, tmp_path: Path) -> None:
    ds = _collect(url)
    assert not set(ds.train.writers) & set(ds.test.writers)
    assert all(len(w) == 16 for w in ds.train.writers + ds.test.writers)
    assert ds.train.writers == _collect(url).train.writers  # stable with one salt
    other = _collect(url, salt="s2")
    assert not set(other.train.writers) & set(ds.train.writers)
    assert pseudonym(1, "s1") != pseudonym(1, "s2") != pseudonym(2, "s1")
    out = export(ds, tmp_path / "export", ["npz", "csv"])
    with np.load(out / "digits.npz") as data:
        assert list(data["writer_train"]) == ds.train.writers
    text = (out / "README.md").read_text() + (out / "csv" / "train.csv").read_text()
    for user in range(10):
        assert str(BASE_TELEGRAM_ID + user) not in text
    with pytest.raises(ExportError, match="salt"):
        _collect(url, salt="")


def test_filters(url: str) -> None:
    confirmed = _collect(url, only_confirmed=True)
    assert set(confirmed.sources) == {"confirmed"}
    corrections = _collect(url, only_corrections=True)
    assert set(corrections.sources) == {"corrected"}
    assert len(confirmed) + len(corrections) == len(_collect(url))
    assert len(_collect(url, since=datetime.now(UTC) + timedelta(days=1))) == 0
    everything = _collect(url)
    counts = np.bincount(
        np.concatenate([everything.train.labels, everything.test.labels]), minlength=10
    )
    threshold = int(np.sort(counts)[3])  # some classes fall below it
    trimmed = _collect(url, min_per_class=threshold)
    assert set(trimmed.dropped_classes) == {k for k in range(10) if counts[k] < threshold}
    assert not set(trimmed.dropped_classes) & set(trimmed.train.labels.tolist())
    with pytest.raises(ExportError):
        _collect(url, only_confirmed=True, only_corrections=True)


def test_parquet_without_pyarrow_says_how_to_get_it(url: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ExportError, match=r"pip install 'digits\[parquet\]'"):
        export(_collect(url), tmp_path / "out", ["npz", "parquet"])
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_cli(url: str, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DIGITS_EXPORT_SALT", "s1")
    assert main(["export", str(tmp_path / "ds"), "--formats", "idx,npz", "--only-confirmed"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["train"] > 0 and (tmp_path / "ds" / "idx").is_dir()
    assert main(["export", str(tmp_path / "ds")]) == 2
    assert "already exists" in capsys.readouterr().err
    # The bot's spelling: --out DIR --format npz.
    assert main(["export", "--out", str(tmp_path / "bot"), "--format", "npz"]) == 0
    assert (tmp_path / "bot" / "digits.npz").is_file()
