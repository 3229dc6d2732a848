"""What corrections teach about cutting: the marks a reading took for digits.

When a person corrects "1.234" read as "11234" to "1234", the reader cut a mark that is
no digit: a separator, the wall of a form's cell, a speck of a patterned background.
Re-reading the stored picture and lining its digits up with the correction finds which
cut it was; its 28×28 crop, the same crop the classifier sees, becomes an example of the
classifier's eleventh class, "not a digit" (`DigitClassifier.rejects_marks`), so that a
retrained model drops such marks. The pictures are re-read with every cut kept, so that
a model that already drops marks still yields them: what it has learned is not forgotten.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

import db
from vision.decode import ImageError
from vision.reader import DigitReader

log = logging.getLogger(__name__)

# The label of a mark in training data: the class after the ten digits.
MARK_LABEL = 10
# Pictures re-read per split and run, newest first: bounds a run's time.
MAX_PICTURES = 3000
# A correction lines up with its reading when at most this share of the digits kept
# differ (the classifier misreads some: that is why the person corrected it).
MAX_DIFFERING = 0.25
# Among cuts that line up equally well, the less confident one is the mark.
_TIE = 1e-3


def extra_cuts(
    read: Sequence[int], confidences: Sequence[float], truth: Sequence[int]
) -> list[int]:
    """Indices of the read digits that are no digit of `truth` (which has fewer).

    The alignment drops ``len(read) - len(truth)`` cuts and pairs the rest with the true
    digits in order, with as few disagreements as possible and, among equals, dropping the
    least confident cuts. Returns [] when even the best alignment disagrees on more than
    MAX_DIFFERING of the digits kept: then nothing can be said about any one cut.
    """
    n, m = len(read), len(truth)
    if m >= n or len(confidences) != n:
        return []
    inf = float("inf")
    # cost[i][j]: read[:i] aligned with truth[:j], every true digit paired.
    cost = np.full((n + 1, m + 1), inf)
    cost[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(0, min(i, m) + 1):
            drop = cost[i - 1, j] + _TIE * confidences[i - 1]
            pair = cost[i - 1, j - 1] + (read[i - 1] != truth[j - 1]) if j else inf
            cost[i, j] = min(drop, pair)
    extras: list[int] = []
    i, j, differing = n, m, 0
    while i > 0:
        pair = cost[i - 1, j - 1] + (read[i - 1] != truth[j - 1]) if j else float("inf")
        if j and np.isclose(cost[i, j], pair):
            differing += int(read[i - 1] != truth[j - 1])
            j -= 1
        else:
            extras.append(i - 1)
        i -= 1
    if differing > MAX_DIFFERING * m:
        return []
    return sorted(extras)


@dataclass
class Marks:
    """Crops of marks found in corrected pictures, and how many pictures gave them."""

    crops: np.ndarray  # uint8 [N, 28, 28]
    pictures: int = 0  # pictures re-read
    with_marks: int = 0  # ... that lined up with their correction and held marks

    @classmethod
    def none(cls) -> Marks:
        return cls(np.zeros((0, 28, 28), np.uint8))


def collect_marks(
    factory: sessionmaker[Session],
    reader: DigitReader,
    images: db.ImageStore,
    *,
    split: str,
    progress: bool = False,
) -> Marks:
    """Re-read the stored pictures of one split's count-mismatch corrections (status
    review) and collect the crops of the cuts that line up with no corrected digit."""
    with db.session_scope(factory) as session:
        pictures = db.corrected_pictures(session, split=split, limit=MAX_PICTURES)
    crops: list[np.ndarray] = []
    marks = Marks.none()
    for picture in tqdm(
        pictures, desc=f"marks ({split})", unit="picture", disable=not progress or not pictures
    ):
        truth = [int(c) for c in picture.corrected_text if c.isdigit()]
        try:
            reading = reader.read(images.read(picture.image_sha256), keep_marks=True)
        except (ImageError, db.ImageNotFound, db.ImageCorrupt) as exc:
            log.debug("picture of reading %d not re-read: %s", picture.reading_id, exc)
            continue
        marks.pictures += 1
        digits = reading.digits
        extras = extra_cuts([d.label for d in digits], [d.confidence for d in digits], truth)
        if extras:
            marks.with_marks += 1
            crops.extend(digits[i].crop for i in extras)
    if crops:
        marks.crops = np.stack(crops).astype(np.uint8)
    log.info(
        "%d marks in %d of %d corrected pictures (%s)",
        len(marks.crops),
        marks.with_marks,
        marks.pictures,
        split,
    )
    return marks
