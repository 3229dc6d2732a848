"""Users, readings, digit labels and the training data drawn from them.

Every function takes a Session and leaves the transaction to the caller: they flush so
ids exist and constraints are checked, and never commit.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import case, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload

from db.errors import (
    InvalidCorrection,
    InvalidInput,
    NotYourReading,
    ReadingNotFound,
)
from db.images import ImageStore, check_sha256
from db.models import (
    Digit,
    LabelSource,
    Reading,
    ReadingStatus,
    Split,
    User,
    UserSource,
    utcnow,
)
from db.records import (
    CorrectionCounts,
    CorrectionResult,
    DigitRecord,
    ForgetResult,
    LabelledDigit,
    LabelledPicture,
    UserStats,
    as_int,
    as_int32,
    check_text,
)

log = logging.getLogger(__name__)

MAX_TEXT = 10_000
MAX_CORRECTION = 2_000
# A recorded picture's side: far beyond any camera or scan, far below the column's range.
MAX_IMAGE_SIDE = 1_000_000


def _now(now: datetime | None) -> datetime:
    if now is None:
        return utcnow()
    if now.tzinfo is None or now.utcoffset() is None:
        raise InvalidInput(f"naive datetime {now!r}: pass a timezone-aware (UTC) datetime")
    return now


def _telegram_id(value: Any) -> int:
    return as_int(value, "telegram_id")


# --- users ---------------------------------------------------------------------------


def get_user(session: Session, telegram_id: int) -> User | None:
    return session.scalar(select(User).where(User.telegram_id == _telegram_id(telegram_id)))


def _user_source(source: UserSource | str) -> UserSource:
    try:
        return UserSource(source)
    except ValueError:
        choices = ", ".join(s.value for s in UserSource)
        raise InvalidInput(f"user source must be one of {choices}, got {source!r}") from None


def get_or_create_user(
    session: Session,
    telegram_id: int,
    *,
    now: datetime | None = None,
    source: UserSource | str = UserSource.BOT,
) -> User:
    """The user with this Telegram id, created on first sight; updates ``last_seen``.

    An INSERT ... ON CONFLICT upsert, so two messages from a new user arriving at once
    cannot both try to create them. ``source`` is recorded when the user is created.
    """
    telegram_id = _telegram_id(telegram_id)
    user_source = _user_source(source)
    now = _now(now)
    dialect = session.get_bind().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:  # pragma: no cover - make_engine only builds these two
        raise InvalidInput(f"unsupported database dialect {dialect!r}")
    statement = insert(User).values(
        telegram_id=telegram_id,
        first_seen=now,
        last_seen=now,
        training_allowed=True,
        blocked=False,
        source=user_source.value,
    )
    statement = statement.on_conflict_do_update(
        index_elements=[User.telegram_id],
        set_={
            "last_seen": case(
                (statement.excluded.last_seen > User.last_seen, statement.excluded.last_seen),
                else_=User.last_seen,
            )
        },
    ).returning(User)
    # The upsert returns the row itself (no second SELECT); a User already in the session
    # is refreshed from it.
    return session.scalars(statement, execution_options={"populate_existing": True}).one()


def set_training_consent(
    session: Session, telegram_id: int, allowed: bool, *, now: datetime | None = None
) -> User:
    """Record whether the user's digits may train the model (creates the user if new)."""
    user = get_or_create_user(session, telegram_id, now=now)
    user.training_allowed = bool(allowed)
    session.flush()
    return user


def set_blocked(
    session: Session, telegram_id: int, blocked: bool, *, now: datetime | None = None
) -> User:
    """Block or unblock a user; a blocked user's digits never reach training."""
    user = get_or_create_user(session, telegram_id, now=now)
    user.blocked = bool(blocked)
    session.flush()
    return user


# --- readings ------------------------------------------------------------------------


def _optional_str(value: Any, what: str, max_len: int) -> str | None:
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string, got {type(value).__name__}")
    if len(value) > max_len:
        raise InvalidInput(f"{what} is longer than {max_len} characters")
    return check_text(value, what)


def _optional_int(value: Any, what: str) -> int | None:
    return None if value is None else as_int(value, what)


def record_reading(
    session: Session,
    *,
    telegram_id: int,
    chat_id: int | None,
    message_id: int | None,
    file_unique_id: str | None,
    image_sha256: str | None,
    image_path: str | Path | None,
    width: int,
    height: int,
    model_version: str | None,
    text: str,
    digits: Sequence[DigitRecord],
    elapsed_ms: float | None,
    now: datetime | None = None,
    source: UserSource | str = UserSource.BOT,
) -> Reading:
    """Store one reading with its digits (status pending); the sender is created if new.

    Everything is validated before anything is written. Store the image first
    (``ImageStore.put``) and commit after: a crash in between leaves a file but no row.
    """
    now = _now(now)
    if not isinstance(text, str):
        raise InvalidInput(f"text must be a string, got {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"text is longer than {MAX_TEXT} characters")
    check_text(text, "text")
    sha = None
    if image_sha256 is not None:
        try:
            sha = check_sha256(str(image_sha256).lower())
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
    width, height = as_int32(width, "width"), as_int32(height, "height")
    if width <= 0 or height <= 0:
        raise InvalidInput(f"image size must be positive, got {width}×{height}")
    if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE:
        raise InvalidInput(
            f"image size {width}×{height} is beyond any picture (at most {MAX_IMAGE_SIDE:,} "
            "pixels a side)"
        )
    elapsed: float | None = None
    if elapsed_ms is not None:
        try:
            elapsed = float(elapsed_ms)
        except (TypeError, ValueError):
            raise InvalidInput(f"elapsed_ms must be a number, got {elapsed_ms!r}") from None
        if not math.isfinite(elapsed) or elapsed < 0:
            raise InvalidInput(f"elapsed_ms must be >= 0, got {elapsed_ms!r}")
    if isinstance(digits, DigitRecord) or not isinstance(digits, Sequence | Iterable):
        raise InvalidInput("digits must be a sequence of DigitRecord")
    rows: list[dict[str, Any]] = []
    for record in digits:
        if not isinstance(record, DigitRecord):
            raise InvalidInput(f"digits must be DigitRecord, got {type(record).__name__}")
        rows.append(record.validated())
    positions = [row["position"] for row in rows]
    if len(set(positions)) != len(positions):
        raise InvalidInput(f"digit positions must be unique, got {sorted(positions)}")
    confidences = [row["confidence"] for row in rows]
    values = {
        "chat_id": _optional_int(chat_id, "chat_id"),
        "message_id": _optional_int(message_id, "message_id"),
        "file_unique_id": _optional_str(file_unique_id, "file_unique_id", 128),
        "image_path": _optional_str(image_path, "image_path", 1024),
        "model_version": _optional_str(model_version, "model_version", 64),
    }

    user = get_or_create_user(session, telegram_id, now=now, source=source)
    reading = Reading(
        user=user,
        created_at=now,
        image_sha256=sha,
        width=width,
        height=height,
        text=text,
        mean_confidence=sum(confidences) / len(confidences) if confidences else None,
        min_confidence=min(confidences) if confidences else None,
        status=ReadingStatus.PENDING,
        elapsed_ms=elapsed,
        digits=[Digit(**row) for row in sorted(rows, key=lambda r: r["position"])],
        **values,
    )
    session.add(reading)
    session.flush()
    return reading


def get_reading(session: Session, reading_id: int) -> Reading | None:
    """The reading with its digits, or None."""
    return session.get(
        Reading, as_int(reading_id, "reading_id"), options=[selectinload(Reading.digits)]
    )


def recent_readings(session: Session, telegram_id: int, *, limit: int = 10) -> list[Reading]:
    """A user's newest readings first (for a /history command)."""
    statement = (
        select(Reading)
        .join(User)
        .where(User.telegram_id == _telegram_id(telegram_id))
        .order_by(Reading.created_at.desc(), Reading.id.desc())
        .limit(as_int(limit, "limit"))
    )
    return list(session.scalars(statement))


def _reading_for_update(session: Session, reading_id: int) -> Reading:
    # Row lock on PostgreSQL so two answers to one reading apply one after the other;
    # SQLite's BEGIN IMMEDIATE already serialises writers.
    reading = session.scalar(
        select(Reading)
        .where(Reading.id == as_int(reading_id, "reading_id"))
        .with_for_update(of=Reading)
        .options(selectinload(Reading.digits))
        .execution_options(populate_existing=True)
    )
    if reading is None:
        raise ReadingNotFound(f"no reading {reading_id}")
    return reading


def _owned_reading(session: Session, reading_id: int, telegram_id: int) -> Reading:
    telegram_id = _telegram_id(telegram_id)
    reading = _reading_for_update(session, reading_id)
    owner = session.scalar(select(User.telegram_id).where(User.id == reading.user_id))
    if owner != telegram_id:
        raise NotYourReading(f"reading {reading.id} belongs to another user")
    return reading


def _source(source: LabelSource | str) -> LabelSource:
    try:
        return LabelSource(source)
    except ValueError:
        choices = ", ".join(s.value for s in LabelSource)
        raise InvalidInput(f"label source must be one of {choices}, got {source!r}") from None


def _apply_labels(
    digits: Sequence[Digit],
    labels: Sequence[int | None],
    source: LabelSource,
    now: datetime,
) -> None:
    for digit, label in zip(digits, labels, strict=True):
        digit.label = label
        digit.label_source = None if label is None else source
        digit.labelled_at = None if label is None else now


def confirm_reading(
    session: Session, reading_id: int, telegram_id: int, *, now: datetime | None = None
) -> Reading:
    """The sender says the text read is right: every digit is labelled with its prediction.

    Overrides an earlier correction (the latest answer wins); confirming twice is harmless.
    """
    now = _now(now)
    reading = _owned_reading(session, reading_id, telegram_id)
    reading.status = ReadingStatus.CONFIRMED
    reading.corrected_text = None
    reading.answered_at = now
    _apply_labels(reading.digits, [d.predicted for d in reading.digits], LabelSource.CONFIRMED, now)
    session.flush()
    return reading


def normalize_correction(text: str) -> str:
    """The canonical form of a correction: digit groups split by one space, lines by \\n.

    Raises InvalidCorrection for anything but ASCII digits and whitespace, or no digits.
    """
    if not isinstance(text, str):
        raise InvalidCorrection(f"a correction must be text, got {type(text).__name__}")
    if len(text) > MAX_CORRECTION:
        raise InvalidCorrection(f"a correction may have at most {MAX_CORRECTION} characters")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    bad = sorted({c for c in text if c not in "0123456789 \n"})
    if bad:
        shown = " ".join(repr(c) for c in bad[:5])
        raise InvalidCorrection(
            f"a correction may contain only digits 0-9, spaces and new lines; found {shown}"
        )
    lines = [" ".join(line.split()) for line in text.split("\n")]
    normalized = "\n".join(line for line in lines if line)
    if not normalized:
        raise InvalidCorrection("a correction must contain at least one digit")
    return normalized


def correct_reading(
    session: Session,
    reading_id: int,
    telegram_id: int,
    text: str,
    *,
    now: datetime | None = None,
) -> CorrectionResult:
    """The sender typed the right text; a later correction replaces an earlier one.

    If the corrected text has as many digits as were segmented, the digits get their true
    labels in reading order (status corrected). Otherwise nothing can be said about any
    single digit: labels are cleared and the reading waits for review (status review).
    """
    normalized = normalize_correction(text)  # validate before touching anything
    now = _now(now)
    reading = _owned_reading(session, reading_id, telegram_id)
    truth = [int(c) for c in normalized if c.isdigit()]
    digits = list(reading.digits)
    labelled = len(truth) == len(digits)
    reading.corrected_text = normalized
    reading.answered_at = now
    if labelled:
        reading.status = ReadingStatus.CORRECTED
        _apply_labels(digits, truth, LabelSource.CORRECTED, now)
    else:
        reading.status = ReadingStatus.REVIEW
        _apply_labels(digits, [None] * len(digits), LabelSource.CORRECTED, now)
    session.flush()
    return CorrectionResult(reading, normalized, labelled, len(truth), len(digits))


def _labels(labels: Sequence[int | None]) -> list[int | None]:
    out: list[int | None] = []
    for i, label in enumerate(labels):
        if label is None:
            out.append(None)
            continue
        value = as_int(label, f"label {i}")
        if not 0 <= value <= 9:
            raise InvalidInput(f"label {i} must be 0-9 or None, got {label!r}")
        out.append(value)
    return out


def label_digits(
    session: Session,
    reading_id: int,
    labels: Sequence[int | None],
    source: LabelSource | str,
    *,
    now: datetime | None = None,
) -> Reading:
    """Set (or with None, clear) the true label of each digit, in position order.

    The learning loop's lower-level tool, e.g. source "aligned" for labels recovered from
    a review correction. ``labels`` must have one entry per digit.
    """
    now = _now(now)
    label_source = _source(source)
    values = _labels(labels)
    reading = _reading_for_update(session, reading_id)
    if len(values) != len(reading.digits):
        raise InvalidInput(
            f"reading {reading.id} has {len(reading.digits)} digits, got {len(values)} labels"
        )
    _apply_labels(reading.digits, values, label_source, now)
    session.flush()
    return reading


def replace_digits(
    session: Session,
    reading_id: int,
    digits: Sequence[DigitRecord],
    *,
    labels: Sequence[int | None] | None = None,
    source: LabelSource | str = LabelSource.ALIGNED,
    now: datetime | None = None,
) -> Reading:
    """Swap a reading's digits for a new segmentation, optionally labelled.

    For label recovery: re-segmenting a review reading so it matches its correction. The
    reading's text and confidences stay what the user was shown.
    """
    now = _now(now)
    label_source = _source(source)
    rows = [d.validated() for d in digits]
    positions = [row["position"] for row in rows]
    if len(set(positions)) != len(positions):
        raise InvalidInput(f"digit positions must be unique, got {sorted(positions)}")
    rows.sort(key=lambda r: r["position"])
    values = _labels(labels) if labels is not None else [None] * len(rows)
    if len(values) != len(rows):
        raise InvalidInput(f"{len(rows)} digits but {len(values)} labels")
    reading = _reading_for_update(session, reading_id)
    reading.digits.clear()
    session.flush()  # old rows gone before new ones take their positions
    new = [Digit(**row) for row in rows]
    _apply_labels(new, values, label_source, now)
    reading.digits.extend(new)
    session.flush()
    return reading


def readings_for_review(
    session: Session,
    *,
    limit: int | None = 100,
    after_id: int | None = None,
    unlabelled_only: bool = True,
    training_allowed_only: bool = True,
) -> list[Reading]:
    """Corrected readings whose digit count did not match, oldest first, with digits.

    Page with ``after_id`` (the last id seen). By default only readings no digit of which
    has a label yet, from users whose data may be used for training.
    """
    statement = (
        select(Reading)
        .where(Reading.status == ReadingStatus.REVIEW)
        .options(selectinload(Reading.digits))
        .order_by(Reading.id)
    )
    if after_id is not None:
        statement = statement.where(Reading.id > as_int(after_id, "after_id"))
    if unlabelled_only:
        labelled = select(Digit.id).where(Digit.reading_id == Reading.id, Digit.label.is_not(None))
        statement = statement.where(~labelled.exists())
    if training_allowed_only:
        statement = statement.join(User).where(User.training_allowed, ~User.blocked)
    if limit is not None:
        statement = statement.limit(as_int(limit, "limit"))
    return list(session.scalars(statement))


# --- training data -------------------------------------------------------------------


_ANSWERED = (ReadingStatus.CONFIRMED, ReadingStatus.CORRECTED, ReadingStatus.REVIEW)


def _eligible(statement: Any) -> Any:
    return statement.where(User.training_allowed.is_(True), User.blocked.is_(False))


def assign_splits(session: Session, holdout_fraction: float) -> int:
    """Give every eligible user with labelled digits and no split yet a split, for good.

    Users are taken in order of arrival; a user goes to holdout while holdout holds no
    more than ``holdout_fraction`` of the users with a split. So holdout grows with the
    user base, and a user's digits never move between train and holdout.
    """
    fraction = float(holdout_fraction)
    if not 0.0 <= fraction < 1.0:
        raise InvalidInput(f"holdout_fraction must be in [0, 1), got {holdout_fraction!r}")
    has_labels = (
        select(Digit.id)
        .join(Reading, Digit.reading_id == Reading.id)
        .where(Reading.user_id == User.id, Digit.label.is_not(None))
        .exists()
    )
    # A picture answered with nothing found in it has no digit, but its text teaches.
    has_answers = (
        select(Reading.id).where(Reading.user_id == User.id, Reading.status.in_(_ANSWERED)).exists()
    )
    pending = list(
        session.scalars(
            _eligible(select(User).where(User.split.is_(None), has_labels | has_answers))
            .order_by(User.id)
            .with_for_update()
        )
    )
    if not pending:
        return 0
    counts = dict(
        session.execute(
            select(User.split, func.count()).where(User.split.is_not(None)).group_by(User.split)
        ).all()
    )
    holdout = counts.get(Split.HOLDOUT, 0)
    total = holdout + counts.get(Split.TRAIN, 0)
    for user in pending:
        if (holdout + 1) <= fraction * (total + 1) + 1e-9:
            user.split = Split.HOLDOUT
            holdout += 1
        else:
            user.split = Split.TRAIN
        total += 1
    session.flush()
    log.info("assigned a train/holdout split to %d users", len(pending))
    return len(pending)


def _split(split: Split | str | None) -> Split | None:
    if split is None:
        return None
    try:
        return Split(split)
    except ValueError:
        raise InvalidInput(f"split must be 'train', 'holdout' or None, got {split!r}") from None


def labelled_digits(
    session: Session,
    *,
    since: datetime | None = None,
    split: Split | str | None = None,
    holdout_fraction: float,
    sources: Iterable[LabelSource | str] | None = None,
    limit: int | None = None,
) -> list[LabelledDigit]:
    """Digits with a true label, usable for training, oldest label first.

    Only from users who allow training and are not blocked. ``since`` compares with when
    the label was set (so "new labels since the last run" works). ``split`` picks one
    side of the per-user split; users new to the split are assigned first (see
    ``assign_splits``), which writes to the users table.
    """
    wanted = _split(split)
    assign_splits(session, holdout_fraction)
    statement = _eligible(
        select(
            Digit.id,
            Digit.reading_id,
            Reading.user_id,
            Digit.label,
            Digit.predicted,
            Digit.label_source,
            User.split,
            Digit.crop,
            Reading.created_at,
            Digit.labelled_at,
        )
        .join(Reading, Digit.reading_id == Reading.id)
        .join(User, Reading.user_id == User.id)
        .where(Digit.label.is_not(None))
    ).order_by(Digit.labelled_at, Digit.id)
    if since is not None:
        statement = statement.where(Digit.labelled_at >= _now(since))
    if wanted is not None:
        statement = statement.where(User.split == wanted)
    if sources is not None:
        chosen = [_source(s) for s in sources]
        statement = statement.where(Digit.label_source.in_(chosen))
    if limit is not None:
        statement = statement.limit(as_int(limit, "limit"))
    return [LabelledDigit(*row) for row in session.execute(statement)]


def labelled_pictures(
    session: Session,
    *,
    split: Split | str | None = None,
    holdout_fraction: float,
    since: datetime | None = None,
) -> list[LabelledPicture]:
    """Stored pictures whose sender confirmed or typed the right text, oldest answer first.

    The text is the whole picture's label (a confirmed reading's text, else the
    correction), so a picture teaches even where its digit count was wrong or nothing was
    found in it. Same eligibility and per-user split as ``labelled_digits``.
    """
    wanted = _split(split)
    assign_splits(session, holdout_fraction)
    truth = case(
        (Reading.status == ReadingStatus.CONFIRMED, Reading.text), else_=Reading.corrected_text
    )
    statement = _eligible(
        select(
            Reading.id,
            Reading.user_id,
            User.split,
            Reading.image_sha256,
            truth,
            Reading.answered_at,
        )
        .join(User, Reading.user_id == User.id)
        .where(
            Reading.status.in_(_ANSWERED),
            Reading.image_sha256.is_not(None),
            Reading.answered_at.is_not(None),
            User.split.is_not(None),
        )
    ).order_by(Reading.answered_at, Reading.id)
    if wanted is not None:
        statement = statement.where(User.split == wanted)
    if since is not None:
        statement = statement.where(Reading.answered_at >= _now(since))
    return [LabelledPicture(*row) for row in session.execute(statement) if row[4]]


# --- statistics and deletion -----------------------------------------------------------


def user_stats(session: Session, telegram_id: int) -> UserStats:
    """Counts for a /stats reply; an unknown user gets zeros (``known=False``)."""
    user = get_user(session, telegram_id)
    if user is None:
        return UserStats(known=False)
    by_status = dict(
        session.execute(
            select(Reading.status, func.count())
            .where(Reading.user_id == user.id)
            .group_by(Reading.status)
        ).all()
    )
    digits, labelled, correct = session.execute(
        select(
            func.count(Digit.id),
            func.count(Digit.label),
            func.coalesce(func.sum(case((Digit.label == Digit.predicted, 1), else_=0)), 0),
        )
        .join(Reading, Digit.reading_id == Reading.id)
        .where(Reading.user_id == user.id)
    ).one()
    return UserStats(
        known=True,
        readings=sum(by_status.values()),
        pending=by_status.get(ReadingStatus.PENDING, 0),
        confirmed=by_status.get(ReadingStatus.CONFIRMED, 0),
        corrected=by_status.get(ReadingStatus.CORRECTED, 0),
        review=by_status.get(ReadingStatus.REVIEW, 0),
        digits=int(digits),
        digits_labelled=int(labelled),
        digits_correct=int(correct),
        training_allowed=user.training_allowed,
        first_seen=user.first_seen,
    )


def forget_user(session: Session, telegram_id: int) -> ForgetResult:
    """Delete a user, their readings and digits; return the images nobody refers to now.

    The caller commits, THEN deletes those files (``delete_unreferenced_images``): if the
    transaction rolls back, nothing is lost. Nothing identifying the user is kept.
    """
    user = session.scalar(
        select(User).where(User.telegram_id == _telegram_id(telegram_id)).with_for_update()
    )
    if user is None:
        return ForgetResult(found=False)
    user_id = user.id
    shas = set(
        session.scalars(
            select(Reading.image_sha256)
            .where(Reading.user_id == user_id, Reading.image_sha256.is_not(None))
            .distinct()
        )
    )
    their_readings = select(Reading.id).where(Reading.user_id == user_id).scalar_subquery()
    sync = {"synchronize_session": "fetch"}
    digits = session.execute(
        delete(Digit).where(Digit.reading_id.in_(their_readings)), execution_options=sync
    ).rowcount
    readings = session.execute(
        delete(Reading).where(Reading.user_id == user_id), execution_options=sync
    ).rowcount
    session.execute(delete(User).where(User.id == user_id), execution_options=sync)
    session.flush()
    still_used = _referenced(session, shas)
    log.info("forgot user #%d: %d readings, %d digits", user_id, readings, digits)
    return ForgetResult(
        found=True,
        readings_deleted=int(readings),
        digits_deleted=int(digits),
        unreferenced_images=sorted(shas - still_used),
    )


def _referenced(session: Session, shas: Iterable[str]) -> set[str]:
    shas = list(shas)
    if not shas:
        return set()
    return set(
        session.scalars(
            select(Reading.image_sha256).where(Reading.image_sha256.in_(shas)).distinct()
        )
    )


def delete_unreferenced_images(
    session: Session, store: ImageStore, shas: Iterable[str]
) -> list[str]:
    """Delete the files of those images that no reading refers to (after commit).

    Checks the references again first, so an image someone else has just sent is kept.
    """
    shas = [check_sha256(s) for s in shas]
    keep = _referenced(session, shas)
    deleted = [sha for sha in shas if sha not in keep and store.delete(sha)]
    return deleted


def mark_unreferenced(session: Session, shas: Iterable[str]) -> set[str]:
    """The hashes among ``shas`` that no reading refers to (for audits of stored files)."""
    shas = set(shas)
    return shas - _referenced(session, shas)


def correction_counts(session: Session) -> CorrectionCounts:
    """How many corrected readings of training users are labelled, directly or not."""
    eligible = (
        select(Reading.status, func.count())
        .join(User, Reading.user_id == User.id)
        .where(User.training_allowed.is_(True), User.blocked.is_(False))
    )
    by_status = dict(
        session.execute(
            eligible.where(
                Reading.status.in_([ReadingStatus.CORRECTED, ReadingStatus.REVIEW])
            ).group_by(Reading.status)
        ).all()
    )
    has_label = select(Digit.id).where(Digit.reading_id == Reading.id, Digit.label.is_not(None))
    aligned = session.scalar(
        select(func.count())
        .select_from(Reading)
        .join(User, Reading.user_id == User.id)
        .where(
            User.training_allowed.is_(True),
            User.blocked.is_(False),
            Reading.status == ReadingStatus.REVIEW,
            has_label.exists(),
        )
    )
    return CorrectionCounts(
        corrected=int(by_status.get(ReadingStatus.CORRECTED, 0)),
        review=int(by_status.get(ReadingStatus.REVIEW, 0)),
        review_labelled=int(aligned or 0),
    )
