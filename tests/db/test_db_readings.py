"""Recording readings, confirming and correcting them, and labelling their digits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from db import (
    Digit,
    DigitRecord,
    InvalidCorrection,
    InvalidInput,
    LabelSource,
    NotYourReading,
    Reading,
    ReadingNotFound,
    ReadingStatus,
    User,
    confirm_reading,
    correct_reading,
    get_or_create_user,
    get_reading,
    get_user,
    label_digits,
    normalize_correction,
    readings_for_review,
    recent_readings,
    record_reading,
    replace_digits,
    set_blocked,
    set_training_consent,
)

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_record_reading_stores_everything(session: Session, reading_kwargs, make_digits) -> None:
    digits = make_digits("12 7")
    digits = [
        DigitRecord(d.position, d.line, d.number, d.box, d.crop, d.predicted, c)
        for d, c in zip(digits, (0.9, 0.6, 0.99), strict=True)
    ]
    sha = "ab" * 32
    kwargs = reading_kwargs(
        telegram_id=5_000_000_000,  # Telegram ids exceed 32 bits
        text="12 7",
        digits=list(reversed(digits)),  # stored in position order whatever the input order
        image_sha256=sha.upper(),
        image_path="ab/ab/" + sha + ".jpg",
        chat_id=-100_123_456_789,
        message_id=77,
        now=T0,
    )
    reading = record_reading(session, **kwargs)
    session.commit()
    session.expunge_all()

    stored = get_reading(session, reading.id)
    assert stored is not None
    assert stored.text == "12 7"
    assert stored.status is ReadingStatus.PENDING
    assert stored.created_at == T0 and stored.created_at.tzinfo is not None
    assert stored.image_sha256 == sha
    assert (stored.chat_id, stored.message_id) == (-100_123_456_789, 77)
    assert (stored.width, stored.height, stored.model_version) == (640, 480, "v1")
    assert stored.elapsed_ms == pytest.approx(12.5)
    assert stored.mean_confidence == pytest.approx((0.9 + 0.6 + 0.99) / 3)
    assert stored.min_confidence == pytest.approx(0.6)
    assert [d.position for d in stored.digits] == [0, 1, 2]
    assert [d.predicted for d in stored.digits] == [1, 2, 7]
    assert [d.number for d in stored.digits] == [0, 0, 1]
    assert type(stored.digits[0].crop) is bytes and stored.digits[0].crop == digits[0].crop
    assert stored.digits[2].box == digits[2].box
    assert all(d.label is None and d.label_source is None for d in stored.digits)
    user = get_user(session, 5_000_000_000)
    assert user is not None and user.id == stored.user_id
    assert user.first_seen == T0 and user.training_allowed and not user.blocked


def test_record_reading_without_digits(session: Session, reading_kwargs) -> None:
    reading = record_reading(session, **reading_kwargs(text="", digits=[], elapsed_ms=None))
    assert reading.mean_confidence is None and reading.min_confidence is None
    assert reading.digits == []


def test_numpy_values_are_accepted(session: Session, reading_kwargs) -> None:
    np = pytest.importorskip("numpy")
    crop = np.zeros((28, 28), dtype=np.uint8)
    crop[5:20, 10:14] = 255
    record = DigitRecord(
        position=np.int64(0),
        line=np.int64(0),
        number=np.int64(0),
        box=np.array([1, 2, 3, 4]),
        crop=crop,
        predicted=np.int64(1),
        confidence=np.float32(0.75),
    )
    reading = record_reading(session, **reading_kwargs(text="1", digits=[record]))
    assert reading.digits[0].crop == crop.tobytes()
    assert reading.digits[0].box == (1, 2, 3, 4)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"crop": bytes(100)}, "784 bytes"),
        ({"predicted": 10}, "predicted must be 0-9"),
        ({"confidence": 1.5}, "between 0 and 1"),
        ({"confidence": float("nan")}, "between 0 and 1"),
        ({"box": (0, 0, 0, 5)}, "w, h > 0"),
        ({"box": (1, 2, 3)}, r"\(x, y, w, h\)"),
        ({"predicted": True}, "bool"),
    ],
)
def test_bad_digit_is_refused_and_nothing_written(
    session: Session, reading_kwargs, make_digits, override: dict, message: str
) -> None:
    digits = make_digits("12")
    first = digits[0]
    fields = {
        "position": first.position,
        "line": first.line,
        "number": first.number,
        "box": first.box,
        "crop": first.crop,
        "predicted": first.predicted,
        "confidence": first.confidence,
    } | override
    with pytest.raises(InvalidInput, match=message):
        record_reading(session, **reading_kwargs(digits=[DigitRecord(**fields), digits[1]]))
    assert _count(session, Reading) == 0 and _count(session, User) == 0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"image_sha256": "../../etc/passwd"}, "SHA-256"),
        ({"width": 0}, "positive"),
        ({"elapsed_ms": -1}, ">= 0"),
        ({"text": 123, "digits": []}, "string"),
        ({"now": datetime(2026, 1, 1)}, "naive"),
        ({"telegram_id": "42", "chat_id": 1}, "telegram_id"),
        ({"model_version": "x" * 65}, "longer than 64"),
        # What drivers used to raise on (UnicodeEncodeError, OverflowError, DataError):
        ({"text": "12\ud800", "digits": []}, "lone surrogate"),
        ({"file_unique_id": "abc\udfff"}, r"file_unique_id .*lone surrogate"),
        ({"image_path": "images/\udcff.jpg"}, r"image_path .*lone surrogate"),
        ({"model_version": "v\ud83d"}, r"model_version .*lone surrogate"),
        ({"text": "1\x002", "digits": []}, "NUL"),
        ({"telegram_id": 2**63, "chat_id": 1}, "telegram_id must be a 64-bit integer"),
        ({"telegram_id": -(2**63) - 1, "chat_id": 1}, "telegram_id must be a 64-bit integer"),
        ({"chat_id": 2**64}, "chat_id must be a 64-bit integer"),
        ({"message_id": 10**30}, "message_id must be a 64-bit integer"),
        ({"width": 2**40}, "width must be a 32-bit integer"),
        ({"height": 2**31}, "height must be a 32-bit integer"),
        ({"width": 5_000_000}, "beyond any picture"),
    ],
)
def test_bad_reading_is_refused(
    session: Session, reading_kwargs, override: dict, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        record_reading(session, **reading_kwargs(**override))
    assert _count(session, Reading) == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("box", (0, 0, 2**40, 5), "32-bit"),
        ("box", (2**31, 0, 5, 5), "32-bit"),
        ("line", 2**63, "32-bit"),
        ("position", -(2**40), "32-bit"),
    ],
)
def test_digit_numbers_beyond_their_columns_are_refused(
    session: Session, reading_kwargs, make_digits, field: str, value, message: str
) -> None:
    import dataclasses

    digit = dataclasses.replace(make_digits("1")[0], **{field: value})
    with pytest.raises(InvalidInput, match=message):
        record_reading(session, **reading_kwargs(digits=[digit]))
    assert _count(session, Reading) == 0


def test_extreme_but_valid_ids_are_stored(session: Session, reading_kwargs) -> None:
    reading = record_reading(
        session, **reading_kwargs(telegram_id=2**63 - 1, chat_id=-(2**63), digits=[])
    )
    assert get_reading(session, reading.id).chat_id == -(2**63)
    assert get_user(session, 2**63 - 1) is not None


def test_duplicate_positions_refused(session: Session, reading_kwargs, make_digits) -> None:
    digits = make_digits("12")
    with pytest.raises(InvalidInput, match="unique"):
        record_reading(session, **reading_kwargs(digits=[digits[0], digits[0]]))


def test_user_last_seen_moves_forward_only(session: Session) -> None:
    user = get_or_create_user(session, 7, now=T0)
    get_or_create_user(session, 7, now=T0 + timedelta(hours=2))
    again = get_or_create_user(session, 7, now=T0 + timedelta(hours=1))  # late message
    assert again is user
    assert (user.first_seen, user.last_seen) == (T0, T0 + timedelta(hours=2))
    assert _count(session, User) == 1


def test_consent_and_block(session: Session) -> None:
    user = set_training_consent(session, 8, False)
    assert not user.training_allowed
    set_blocked(session, 8, True)
    session.commit()
    session.expunge_all()
    user = get_user(session, 8)
    assert user is not None and user.blocked and not user.training_allowed
    set_training_consent(session, 8, True)
    assert get_user(session, 8).training_allowed  # type: ignore[union-attr]


def test_confirm_labels_every_digit(session: Session, reading_kwargs) -> None:
    reading = record_reading(session, **reading_kwargs(text="305"))
    session.commit()
    confirmed = confirm_reading(session, reading.id, 42, now=T0)
    session.commit()
    assert confirmed.status is ReadingStatus.CONFIRMED
    assert confirmed.answered_at == T0
    assert [(d.label, d.label_source) for d in confirmed.digits] == [
        (3, LabelSource.CONFIRMED),
        (0, LabelSource.CONFIRMED),
        (5, LabelSource.CONFIRMED),
    ]
    assert all(d.labelled_at == T0 for d in confirmed.digits)
    confirm_reading(session, reading.id, 42)  # again: harmless
    assert confirmed.status is ReadingStatus.CONFIRMED


def test_a_reading_belongs_to_its_sender(session: Session, reading_kwargs) -> None:
    reading = record_reading(session, **reading_kwargs(telegram_id=1))
    session.commit()
    with pytest.raises(NotYourReading):
        confirm_reading(session, reading.id, 2)
    with pytest.raises(NotYourReading):
        correct_reading(session, reading.id, 2, "999")
    with pytest.raises(ReadingNotFound):
        confirm_reading(session, reading.id + 1000, 1)
    with pytest.raises(ReadingNotFound):
        correct_reading(session, reading.id + 1000, 1, "1")
    session.rollback()
    assert get_reading(session, reading.id).status is ReadingStatus.PENDING  # type: ignore[union-attr]


def test_correction_with_matching_count_labels_digits(session: Session, reading_kwargs) -> None:
    reading = record_reading(session, **reading_kwargs(text="12 7"))
    session.commit()
    result = correct_reading(session, reading.id, 42, " 13\t 7 \r\n", now=T0)
    session.commit()
    assert result.labelled and result.text == "13 7"
    assert (result.expected_digits, result.found_digits) == (3, 3)
    assert result.reading.status is ReadingStatus.CORRECTED
    assert result.reading.corrected_text == "13 7"
    assert [d.label for d in result.reading.digits] == [1, 3, 7]
    assert {d.label_source for d in result.reading.digits} == {LabelSource.CORRECTED}
    assert result.reading.text == "12 7"  # what was read stays


def test_correction_with_other_count_goes_to_review(session: Session, reading_kwargs) -> None:
    reading = record_reading(session, **reading_kwargs(text="12"))
    session.commit()
    confirm_reading(session, reading.id, 42)  # labels set ...
    session.commit()
    result = correct_reading(session, reading.id, 42, "1\n24")
    session.commit()
    assert not result.labelled
    assert (result.expected_digits, result.found_digits) == (3, 2)
    assert result.reading.status is ReadingStatus.REVIEW
    assert result.reading.corrected_text == "1\n24"
    assert all(d.label is None and d.label_source is None for d in result.reading.digits)

    # ... and a later correction overwrites the earlier one
    result = correct_reading(session, reading.id, 42, "17")
    session.commit()
    assert result.labelled and result.reading.status is ReadingStatus.CORRECTED
    assert [d.label for d in result.reading.digits] == [1, 7]
    # confirming afterwards: the latest answer wins again
    confirmed = confirm_reading(session, reading.id, 42)
    assert confirmed.corrected_text is None
    assert [d.label for d in confirmed.digits] == [1, 2]


@pytest.mark.parametrize("bad", ["12a", "", "   \n ", "١٢", "1,2", "-5", "1.5", None, "9" * 2001])
def test_invalid_corrections_change_nothing(session: Session, reading_kwargs, bad) -> None:
    reading = record_reading(session, **reading_kwargs(text="12"))
    session.commit()
    with pytest.raises(InvalidCorrection):
        correct_reading(session, reading.id, 42, bad)
    session.rollback()
    stored = get_reading(session, reading.id)
    assert stored is not None and stored.status is ReadingStatus.PENDING
    assert stored.corrected_text is None


def test_normalize_correction() -> None:
    assert normalize_correction("  1 2\n\n 34  \n") == "1 2\n34"
    assert normalize_correction("007") == "007"
    with pytest.raises(InvalidCorrection, match="only digits"):
        normalize_correction("12 o'clock")


def test_label_digits_and_clear(session: Session, reading_kwargs) -> None:
    reading = record_reading(session, **reading_kwargs(text="123"))
    correct_reading(session, reading.id, 42, "1234")  # review
    session.commit()
    labelled = label_digits(session, reading.id, [1, None, 3], "aligned", now=T0)
    session.commit()
    assert [(d.label, d.label_source) for d in labelled.digits] == [
        (1, LabelSource.ALIGNED),
        (None, None),
        (3, LabelSource.ALIGNED),
    ]
    with pytest.raises(InvalidInput, match="3 digits, got 2 labels"):
        label_digits(session, reading.id, [1, 2], LabelSource.ALIGNED)
    with pytest.raises(InvalidInput, match="0-9"):
        label_digits(session, reading.id, [1, 2, 10], LabelSource.ALIGNED)
    with pytest.raises(InvalidInput, match="label source"):
        label_digits(session, reading.id, [1, 2, 3], "guessed")
    with pytest.raises(ReadingNotFound):
        label_digits(session, 999_999, [], "aligned")


def test_replace_digits_for_label_recovery(session: Session, reading_kwargs, make_digits) -> None:
    reading = record_reading(session, **reading_kwargs(text="12"))
    correct_reading(session, reading.id, 42, "128")
    session.commit()
    replaced = replace_digits(
        session, reading.id, make_digits("128", seed=3), labels=[1, 2, 8], source="aligned"
    )
    session.commit()
    assert [(d.position, d.label) for d in replaced.digits] == [(0, 1), (1, 2), (2, 8)]
    assert session.scalar(select(func.count()).select_from(Digit)) == 3
    with pytest.raises(InvalidInput, match="labels"):
        replace_digits(session, reading.id, make_digits("12"), labels=[1])


def test_readings_for_review(session: Session, reading_kwargs) -> None:
    ids = []
    for telegram_id, typed in ((1, "123"), (2, "45"), (3, "9"), (4, "1")):
        reading = record_reading(session, **reading_kwargs(telegram_id=telegram_id, text="12"))
        correct_reading(session, reading.id, telegram_id, typed)
        ids.append(reading.id)
    set_training_consent(session, 3, False)  # user 3 opted out
    session.commit()
    # 1 and 3 mismatch (3 and 1 digits vs 2), 2 matched, 4 mismatched
    assert [r.id for r in readings_for_review(session)] == [ids[0], ids[3]]
    all_review = readings_for_review(session, training_allowed_only=False)
    assert [r.id for r in all_review] == [ids[0], ids[2], ids[3]]
    assert [r.id for r in readings_for_review(session, after_id=ids[0])] == [ids[3]]
    assert len(readings_for_review(session, limit=1)) == 1
    label_digits(session, ids[0], [1, 2], "aligned")
    assert [r.id for r in readings_for_review(session)] == [ids[3]]
    assert len(readings_for_review(session, unlabelled_only=False)) == 2
    assert len(readings_for_review(session)[0].digits) == 2


def test_recent_readings(session: Session, reading_kwargs) -> None:
    for i in range(3):
        record_reading(session, **reading_kwargs(text=str(i), now=T0 + timedelta(minutes=i)))
    record_reading(session, **reading_kwargs(telegram_id=9, text="9"))
    assert [r.text for r in recent_readings(session, 42, limit=2)] == ["2", "1"]


def test_database_constraints_hold_without_the_orm(session: Session, reading_kwargs) -> None:
    """The schema itself refuses bad rows (a second line of defence for other writers)."""
    reading = record_reading(session, **reading_kwargs(text="1"))
    session.commit()
    digit_id = reading.digits[0].id
    for statement in (
        "UPDATE digits SET label = 11, label_source = 'corrected', labelled_at = created_at",
        "UPDATE digits SET label = 3",  # label without source
        "UPDATE readings SET status = 'maybe'",
        "UPDATE digits SET crop = :short",
    ):
        statement = statement.replace("created_at", "'2026-01-01 00:00:00+00'")
        with pytest.raises(Exception) as info:
            session.execute(text(statement + " WHERE 1 = 1"), {"short": b"x"})
            session.flush()
        assert "constraint" in str(info.value).lower() or "check" in str(info.value).lower()
        session.rollback()
    assert session.get(Digit, digit_id).label is None  # type: ignore[union-attr]


def test_deleting_a_reading_cascades_to_digits(session: Session, reading_kwargs) -> None:
    reading = record_reading(session, **reading_kwargs(text="123"))
    session.commit()
    session.execute(text("DELETE FROM readings WHERE id = :id"), {"id": reading.id})
    session.commit()
    assert _count(session, Digit) == 0
