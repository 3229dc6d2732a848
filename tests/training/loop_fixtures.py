"""Shared setup for the learning-loop tests: a migrated SQLite file and simulated users."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import db
from benchmarks.loop import simulate_users
from vision.classifier import DigitClassifier


def sqlite_url(data_dir: Path) -> str:
    data_dir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{(data_dir / 'digits.sqlite3').resolve()}"
    db.upgrade(url)
    return url


def populate(
    url: str,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    users: int = 10,
    per_reading: int = 6,
    corrected: int = 10_000,
    clf: DigitClassifier | None = None,
):
    """Users send every digit once, confirming right readings and correcting wrong ones."""
    engine = db.make_engine(url)
    try:
        factory = db.make_session_factory(engine)
        return simulate_users(
            factory,
            clf or DigitClassifier.load(),
            images,
            labels,
            users=users,
            digits_per_reading=per_reading,
            target_corrected=corrected,
            progress=False,
        )
    finally:
        engine.dispose()
