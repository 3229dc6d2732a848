"""The bench's simulated users go through the real storage functions, honestly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

import db
from benchmarks.loop import (
    BASE_TELEGRAM_ID,
    CONTROL_FIELDS,
    HELD_OUT_FIELDS,
    draw_fields,
    exact_accuracy,
    field_outcomes,
    pseudo_writers,
    simulate_field_readings,
    users_fields,
)
from db.models import LabelSource, Reading, ReadingStatus
from digits.cli import main
from tests.training.loop_fixtures import populate, sqlite_url
from training.data.devsets import load_usps
from vision.reader import DigitReader


def test_pseudo_writers_are_disjoint_and_cover_everything() -> None:
    parts = pseudo_writers(1003, 40, seed=0)
    assert len(parts) == 40
    joined = np.concatenate(parts)
    assert len(joined) == 1003 and len(np.unique(joined)) == 1003


def test_users_confirm_right_readings_and_correct_wrong_ones(
    tmp_path: Path, devsets_dir: Path
) -> None:
    usps = load_usps(devsets_dir, "test")
    url = sqlite_url(tmp_path / "data")
    stats = populate(url, usps.images[:500], usps.labels[:500], corrected=60, per_reading=10)
    assert stats.corrected_digits >= 60 and stats.corrected_digits % 10 == 0
    assert stats.digits < 500  # stopped once enough corrections were in
    engine = db.make_engine(url)
    try:
        with db.session_scope(db.make_session_factory(engine)) as session:
            digits = db.labelled_digits(session, holdout_fraction=0.2)
            assert len(digits) == stats.digits  # every reading was answered
            by_source = {s: [d for d in digits if d.source == s] for s in LabelSource}
            assert len(by_source[LabelSource.CORRECTED]) == stats.corrected_digits
            # Confirmed digits were read right; corrected readings hold the wrong ones.
            assert all(d.label == d.predicted for d in by_source[LabelSource.CONFIRMED])
            wrong = sum(d.label != d.predicted for d in by_source[LabelSource.CORRECTED])
            assert wrong == stats.wrong_digits > 0
            totals = [db.user_stats(session, BASE_TELEGRAM_ID + u) for u in range(stats.users)]
            assert sum(t.corrected for t in totals) == stats.corrected_readings
            assert sum(t.confirmed for t in totals) == stats.confirmed_readings
            assert all(t.pending == 0 for t in totals)
            review = db.readings_for_review(session)
            assert not review
    finally:
        engine.dispose()


def test_field_users_store_each_picture_and_answer_as_bot_users(
    tmp_path: Path, devsets_dir: Path
) -> None:
    """Each field is read by the real reader and stored with its picture; its user confirms
    a right reading and corrects a wrong one to the field's true digits."""
    usps = load_usps(devsets_dir, "train")
    images, labels = usps.images[:900], usps.labels[:900]
    url = sqlite_url(tmp_path / "data")
    store = db.ImageStore(tmp_path / "images")
    reader = DigitReader.load()
    kw = {"condition": HELD_OUT_FIELDS, "users": 3, "fields": 12, "seed": 4}
    engine = db.make_engine(url)
    try:
        factory = db.make_session_factory(engine)
        stats = simulate_field_readings(
            factory, reader, store, images, labels, progress=False, **kw
        )
        sent = list(users_fields(images, labels, **kw))
        assert len(sent) == 12 and {u for u, _ in sent} == {0, 1, 2}
        assert stats.readings == 12  # nothing found too: stored, and the number typed in
        assert (
            stats.confirmed
            + stats.corrected_same_count
            + stats.corrected_other_count
            + stats.nothing_found
            == stats.readings
        )
        assert stats.corrected_other_count > 0  # the texture and separators read as digits
        with db.session_scope(factory) as session:
            readings = session.scalars(select(Reading).order_by(Reading.id)).all()
            assert len(readings) == stats.readings
            statuses = [r.status for r in readings]
            assert statuses.count(ReadingStatus.CONFIRMED) == stats.confirmed
            assert statuses.count(ReadingStatus.CORRECTED) == stats.corrected_same_count
            assert statuses.count(ReadingStatus.REVIEW) == (
                stats.corrected_other_count + stats.nothing_found
            )
            assert sum(not r.digits for r in readings) == stats.nothing_found
            for r, (user, f) in zip(readings, sent, strict=True):  # in the order sent
                assert r.user.telegram_id == BASE_TELEGRAM_ID + user
                assert r.image_sha256 and r.image_path and Path(r.image_path).exists()
                again = reader.read(store.read(r.image_sha256))  # the picture stored was read
                assert again.text == r.text and len(again.digits) == len(r.digits)
                if "".join(str(d.label) for d in again.digits) == f.text:
                    assert r.status is ReadingStatus.CONFIRMED and r.corrected_text is None
                else:
                    assert r.status is not ReadingStatus.CONFIRMED and r.corrected_text == f.text
            per_user = [db.user_stats(session, BASE_TELEGRAM_ID + u) for u in range(3)]
            assert sum(t.confirmed for t in per_user) == stats.confirmed
            assert all(t.pending == 0 for t in per_user)
    finally:
        engine.dispose()


def test_exact_accuracy_counts_whole_strings(devsets_dir: Path) -> None:
    usps = load_usps(devsets_dir, "test")
    pool = (usps.images, usps.labels)
    control = draw_fields(CONTROL_FIELDS, pool, 8, seed=1)
    assert [f.text for f in control] == [f.text for f in draw_fields(CONTROL_FIELDS, pool, 8, 1)]
    assert all(f.background == "plain" and not f.separators for f in control)
    held = draw_fields(HELD_OUT_FIELDS, pool, 8, seed=1)
    assert all(f.background == "guilloche" for f in held)
    assert any(f.separators for f in held)
    reader = DigitReader.load()
    read = ["".join(str(d.label) for d in reader.read(f.image).digits) for f in control]
    right = sum(text == f.text for text, f in zip(read, control, strict=True))
    assert exact_accuracy(reader, control, progress=False) == right / 8
    assert 0 < right < 8  # a test that can fail both ways
    outcomes = field_outcomes(reader, held, progress=False)
    texts = ["".join(str(d.label) for d in reader.read(f.image).digits) for f in held]
    more = sum(len(t) > len(f.text) for t, f in zip(texts, held, strict=True))
    assert outcomes["more"] == more / 8 and more > 0  # the texture read as digits
    assert sum(outcomes.values()) == pytest.approx(1.0)


@pytest.mark.slow
def test_bench_loop_fields_scenario_end_to_end(
    tmp_path: Path, mnist_dir: Path, devsets_dir: Path, monkeypatch, capsys
) -> None:
    """A tiny run of `digits bench loop --scenario fields`: readings with their pictures
    land in the kept data dir, the retrain runs, the summary holds before and after."""
    monkeypatch.setenv("DIGITS_MNIST_DIR", str(mnist_dir))
    monkeypatch.setenv("DIGITS_DEVSETS_DIR", str(devsets_dir))
    monkeypatch.setenv("DIGITS_RETRAIN_MIN_NEW_LABELS", "1")
    keep = tmp_path / "kept"
    argv = ["bench", "loop", "--scenario", "fields", "--users", "3", "--fields", "10"]
    argv += ["--test-fields", "5", "--epochs", "1", "--epoch-size", "256", "--threads", "1"]
    code = main([*argv, "--line-steps", "3", "--keep", str(keep)])
    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    assert set(summary["targets"]) == {
        "fields_exact_up_20pt",
        "mnist_drop_le_0.1pt",
        "under_10_min",
    }
    assert code == (0 if all(summary["targets"].values()) else 1)
    for side in ("before", "after"):
        kinds = {f"fields_{k}" for k in ("exact", "more", "fewer", "misread")}
        assert set(summary[side]) == kinds | {"control_exact", "mnist_test"}
        assert all(0.0 <= v <= 1.0 for v in summary[side].values())
        # Every held-out field is read exactly or misses in exactly one way.
        assert sum(summary[side][k] for k in kinds) == pytest.approx(1.0)
        assert summary[side]["mnist_test"] > 0.99
    assert summary["condition"]["background"] == "guilloche"
    assert summary["retrain"]["status"] in {"promoted", "rejected"}
    assert summary["retrain"]["new_labels"] > 0  # corrections reached the retrain
    # The start version read with the line model trained without the condition, and the
    # users' pictures were cut into bands for it.
    assert "+lines-without-held-out" in out.split("start model ", 1)[1].splitlines()[0]
    assert summary["retrain"]["line_data"]["bands"] > 0
    assert summary["retrain"]["line_model"].endswith("-lines")
    assert "held-out fields exact" in out and "control fields exact" in out
    sim = summary["simulation"]
    engine = db.make_engine(f"sqlite:///{keep / 'digits.sqlite3'}")
    try:
        with db.session_scope(db.make_session_factory(engine)) as session:
            readings = session.scalars(select(Reading)).all()
            assert len(readings) == sim["readings"] > 0
            for r in readings:
                assert r.status is not ReadingStatus.PENDING
                assert r.image_path and Path(r.image_path).is_relative_to(keep / "images")
                assert Path(r.image_path).exists()
    finally:
        engine.dispose()
