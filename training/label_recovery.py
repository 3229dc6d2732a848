"""Label recovery: corrections whose digit count did not match still teach.

When a user corrects "1234" to "12345", nothing can be said about any one segmented digit
(which one was missed?). The reader re-segments the stored image into exactly as many
digits as the correction has (split the widest shape, merge the closest fragments, drop
the weakest mark); when that succeeds the new digits are stored with their labels, source
``aligned``. Otherwise the reading keeps waiting for a person's review.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

import db
from vision.decode import ImageError
from vision.reader import DigitReader
from vision.segment import SegmentationError

log = logging.getLogger(__name__)


@dataclass
class RecoveryReport:
    """What one recovery pass did, and where the corrected readings stand afterwards."""

    attempted: int = 0  # review readings looked at in this pass
    recovered: int = 0  # ... that got aligned labels now
    failed: int = 0  # ... the reader could not re-segment to the corrected count
    disagreed: int = 0  # ... re-segmented, but the pieces do not look like the correction
    no_image: int = 0  # ... whose image was not stored (or is gone)
    digits_labelled: int = 0  # aligned digit labels written in this pass
    # Totals over the database (users who allow training), after this pass:
    corrected_readings: int = 0  # every corrected reading, matching count or not
    labelled_without_recovery: int = 0  # digit count matched: labelled directly
    labelled_with_recovery: int = 0  # the above plus readings recovered by alignment
    waiting_for_review: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def truth_digits(corrected_text: str | None) -> list[int]:
    """The digits of a stored correction, in reading order."""
    return [int(c) for c in corrected_text or "" if c.isdigit()]


def recover_labels(
    factory: sessionmaker[Session],
    reader: DigitReader,
    images: db.ImageStore,
    *,
    limit: int | None = None,
    min_agreement: float = 0.5,
    progress: bool = False,
    on_reading: Callable[[int, bool], None] | None = None,
) -> RecoveryReport:
    """Try every unlabelled review reading once; each success commits on its own.

    A re-segmentation counts only if the model reads at least `min_agreement` of the new
    pieces as the corrected digits: a wrong split would otherwise teach wrong labels
    (the model may misread a digit or two, which is why the user corrected it).
    A reading that fails is left exactly as it was (still waiting for review), so nothing
    stored is ever lost; it is tried again on the next pass (a better model may split it).
    """
    report = RecoveryReport()
    after: int | None = None
    todo: list[tuple[int, str | None, str | None]] = []
    while limit is None or len(todo) < limit:
        with db.session_scope(factory) as session:
            page = db.readings_for_review(session, limit=200, after_id=after)
            todo += [(r.id, r.image_sha256, r.corrected_text) for r in page]
        if not page:
            break
        after = todo[-1][0]
    if limit is not None:
        todo = todo[:limit]
    for reading_id, sha, corrected in tqdm(
        todo, desc="label recovery", unit="reading", disable=not progress or not todo
    ):
        report.attempted += 1
        truth = truth_digits(corrected)
        ok = False
        if not truth:
            report.failed += 1
        elif sha is None or not images.enabled or not images.exists(sha):
            report.no_image += 1
        else:
            try:
                data = images.read(sha)
                reading = reader.read(data, expected_digits=len(truth))
            except (SegmentationError, ImageError, db.ImageNotFound, db.ImageCorrupt) as exc:
                log.debug("reading %d stays in review: %s", reading_id, exc)
                report.failed += 1
            else:
                agree = sum(d.label == t for d, t in zip(reading.digits, truth, strict=False))
                if len(reading.digits) != len(truth):  # the reader promises this; be sure
                    report.failed += 1
                elif agree < min_agreement * len(truth):
                    log.debug(
                        "reading %d: re-segmented pieces disagree with the correction", reading_id
                    )
                    report.disagreed += 1
                else:
                    with db.session_scope(factory) as session:
                        db.replace_digits(
                            session,
                            reading_id,
                            db.DigitRecord.from_digits(reading.digits),
                            labels=truth,
                            source=db.LabelSource.ALIGNED,
                        )
                    report.recovered += 1
                    report.digits_labelled += len(truth)
                    ok = True
        if on_reading:
            on_reading(reading_id, ok)
    with db.session_scope(factory) as session:
        _fill_totals(session, report)
    log.info(
        "label recovery: %d of %d review readings recovered (%d not re-segmentable, %d "
        "disagreeing, %d without image); corrected readings labelled: %d without "
        "recovery, %d with",
        report.recovered,
        report.attempted,
        report.failed,
        report.disagreed,
        report.no_image,
        report.labelled_without_recovery,
        report.labelled_with_recovery,
    )
    return report


def _fill_totals(session: Session, report: RecoveryReport) -> None:
    counts = db.correction_counts(session)
    report.corrected_readings = counts.corrected + counts.review
    report.labelled_without_recovery = counts.corrected
    report.labelled_with_recovery = counts.corrected + counts.review_labelled
    report.waiting_for_review = counts.review - counts.review_labelled
