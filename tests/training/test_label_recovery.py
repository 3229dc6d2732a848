"""Label recovery: a correction with another digit count is re-segmented and labelled."""

from __future__ import annotations

from pathlib import Path

from loop_fixtures import sqlite_url

import db
from benchmarks.loop import compose_photo
from db.models import LabelSource, ReadingStatus
from training.label_recovery import recover_labels
from vision.reader import DigitReader


def _store(session, telegram_id: int, records, image=None, text="0") -> int:
    reading = db.record_reading(
        session,
        telegram_id=telegram_id,
        chat_id=telegram_id,
        message_id=None,
        file_unique_id=None,
        image_sha256=image.sha256 if image else None,
        image_path=str(image.path) if image else None,
        width=400,
        height=100,
        model_version="test",
        text=text,
        digits=records,
        elapsed_ms=1.0,
    )
    return reading.id


def test_recovery_labels_what_it_can_and_keeps_the_rest(tmp_path: Path, mnist) -> None:
    url = sqlite_url(tmp_path / "data")
    images = db.ImageStore(tmp_path / "data" / "images")
    reader = DigitReader.load()
    test = mnist[1]
    png = compose_photo(test.images[:5])  # 7 2 1 0 4
    truth = "".join(str(int(v)) for v in test.labels[:5])
    assert truth == "72104"
    stored = images.put(png)
    full = db.DigitRecord.from_digits(reader.read(png).digits)
    assert len(full) == 5
    engine = db.make_engine(url)
    factory = db.make_session_factory(engine)
    try:
        with db.session_scope(factory) as session:
            # 1: the bot missed a digit; the user typed all five -> review, recoverable.
            missed = _store(session, 1, full[:4], stored)
            # 2: a correction no re-segmentation can match -> stays in review.
            impossible = _store(session, 2, full[:4], stored)
            # 3: the image was not stored -> stays in review.
            no_image = _store(session, 3, full[:4])
            # 5: re-segmentable, but the pieces look nothing like the correction.
            nonsense = _store(session, 5, full[:4], stored)
            # 4: the count matches -> labelled directly, no recovery needed.
            direct = _store(session, 4, full, stored)
            assert not db.correct_reading(session, missed, 1, truth).labelled
            assert not db.correct_reading(session, impossible, 2, "1" * 40).labelled
            assert not db.correct_reading(session, no_image, 3, truth).labelled
            assert db.correct_reading(session, direct, 4, truth).labelled
            assert not db.correct_reading(session, nonsense, 5, "99999").labelled

        report = recover_labels(factory, reader, images)
        assert (report.attempted, report.recovered, report.failed) == (4, 1, 1)
        assert (report.disagreed, report.no_image) == (1, 1)
        assert report.digits_labelled == 5
        assert report.corrected_readings == 5
        assert report.labelled_without_recovery == 1
        assert report.labelled_with_recovery == 2
        assert report.waiting_for_review == 3

        with db.session_scope(factory) as session:
            recovered = db.get_reading(session, missed)
            assert [d.label for d in recovered.digits] == [7, 2, 1, 0, 4]
            assert {d.label_source for d in recovered.digits} == {LabelSource.ALIGNED}
            assert recovered.text == "0"  # what the user was shown stays as it was
            kept = db.get_reading(session, impossible)
            assert kept.status == ReadingStatus.REVIEW and kept.corrected_text == "1" * 40
            assert len(kept.digits) == 4 and all(d.label is None for d in kept.digits)
            aligned = db.labelled_digits(session, holdout_fraction=0.2, sources=["aligned"])
            assert sorted(d.label for d in aligned) == [0, 1, 2, 4, 7]

        again = recover_labels(factory, reader, images)
        assert (again.attempted, again.recovered) == (3, 0)  # the recovered one is done
    finally:
        engine.dispose()
