"""The bench's simulated users go through the real storage functions, honestly."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import db
from benchmarks.loop import BASE_TELEGRAM_ID, pseudo_writers
from db.models import LabelSource
from tests.training.loop_fixtures import populate, sqlite_url
from training.data.devsets import load_usps


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
