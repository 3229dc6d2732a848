"""What the operator's dashboard shows: counts per source, live accuracy, confusions.

Read-only queries over the readings people have answered; like every storage function
they take a Session and leave the transaction to the caller.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from db.models import Digit, LabelSource, Reading, ReadingStatus, User, UserSource


@dataclass(frozen=True)
class SourceCounts:
    """Users, readings and answers that came through one door (bot or web)."""

    source: str
    users: int = 0
    readings: int = 0
    confirmed: int = 0
    corrections: int = 0  # corrected, or corrected with another digit count (review)


@dataclass(frozen=True)
class DailyAccuracy:
    """How one model version read the readings answered on one day (UTC)."""

    day: date
    model_version: str
    answered: int
    exact: int  # confirmed, or corrected to the very text read
    digits_labelled: int
    digits_correct: int

    @property
    def accuracy(self) -> float:
        return self.exact / self.answered if self.answered else 0.0


def source_counts(session: Session) -> list[SourceCounts]:
    """One row per source (every source listed, zeros included)."""
    users = dict(session.execute(select(User.source, func.count()).group_by(User.source)).all())
    corrected = (ReadingStatus.CORRECTED, ReadingStatus.REVIEW)
    rows = session.execute(
        select(
            User.source,
            func.count(Reading.id),
            func.coalesce(
                func.sum(case((Reading.status == ReadingStatus.CONFIRMED, 1), else_=0)), 0
            ),
            func.coalesce(func.sum(case((Reading.status.in_(corrected), 1), else_=0)), 0),
        )
        .join(User, Reading.user_id == User.id)
        .group_by(User.source)
    ).all()
    readings = {source: (int(n), int(c), int(k)) for source, n, c, k in rows}
    out = []
    for source in UserSource:
        n, confirmed, corrections = readings.get(source, (0, 0, 0))
        out.append(SourceCounts(source.value, int(users.get(source, 0)), n, confirmed, corrections))
    return out


def daily_accuracy(session: Session, *, since: datetime | None = None) -> list[DailyAccuracy]:
    """Answered readings per day and model version, oldest first.

    A reading counts as exact when its sender confirmed it or typed the text it read.
    Aggregated here rather than in SQL so that the day is the same UTC day on SQLite
    and PostgreSQL.
    """
    statement = select(
        Reading.id,
        Reading.answered_at,
        Reading.model_version,
        Reading.status,
        Reading.text,
        Reading.corrected_text,
    ).where(Reading.status != ReadingStatus.PENDING, Reading.answered_at.is_not(None))
    if since is not None:
        statement = statement.where(Reading.answered_at >= since)
    digit_rows = select(
        Digit.reading_id,
        func.count(Digit.label),
        func.coalesce(func.sum(case((Digit.label == Digit.predicted, 1), else_=0)), 0),
    ).group_by(Digit.reading_id)
    if since is not None:
        digit_rows = digit_rows.join(Reading, Digit.reading_id == Reading.id).where(
            Reading.answered_at >= since
        )
    per_reading = {rid: (int(n), int(k)) for rid, n, k in session.execute(digit_rows)}
    totals: dict[tuple[date, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for rid, answered_at, version, status, text, corrected in session.execute(statement):
        key = (answered_at.date(), version or "unknown")
        row = totals[key]
        row[0] += 1
        if status == ReadingStatus.CONFIRMED or (corrected is not None and corrected == text):
            row[1] += 1
        labelled, correct = per_reading.get(rid, (0, 0))
        row[2] += labelled
        row[3] += correct
    return [DailyAccuracy(day, version, *row) for (day, version), row in sorted(totals.items())]


def confusion(session: Session) -> list[list[int]]:
    """counts[true][predicted] over every labelled digit (confirmed ones on the diagonal)."""
    counts = [[0] * 10 for _ in range(10)]
    rows = session.execute(
        select(Digit.label, Digit.predicted, func.count())
        .where(Digit.label.is_not(None))
        .group_by(Digit.label, Digit.predicted)
    )
    for label, predicted, n in rows:
        if 0 <= label <= 9 and 0 <= predicted <= 9:
            counts[label][predicted] += int(n)
    return counts


def confused_pairs(counts: list[list[int]], top: int = 10) -> list[tuple[int, int, int]]:
    """The most frequent (true, read as, count) mistakes in a confusion matrix."""
    pairs = [(t, p, counts[t][p]) for t in range(10) for p in range(10) if t != p and counts[t][p]]
    return sorted(pairs, key=lambda x: (-x[2], x[0], x[1]))[:top]


def corrected_digit_count(session: Session) -> int:
    """Digits whose label came from a correction (typed or recovered)."""
    sources = (LabelSource.CORRECTED, LabelSource.ALIGNED)
    return int(
        session.scalar(select(func.count(Digit.id)).where(Digit.label_source.in_(sources))) or 0
    )
