"""A user's statistics, and forgetting a user completely (rows and image files)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db import (
    Digit,
    ImageStore,
    Reading,
    User,
    confirm_reading,
    correct_reading,
    delete_unreferenced_images,
    forget_user,
    get_user,
    labelled_digits,
    record_reading,
    session_scope,
    set_training_consent,
    user_stats,
)


def test_user_stats(session: Session, reading_kwargs) -> None:
    assert user_stats(session, 42).known is False
    assert user_stats(session, 42).accuracy is None
    confirmed = record_reading(session, **reading_kwargs(text="12"))  # 2 right
    confirm_reading(session, confirmed.id, 42)
    corrected = record_reading(session, **reading_kwargs(text="345"))  # 3 and 5 right, 4 wrong
    correct_reading(session, corrected.id, 42, "375")
    review = record_reading(session, **reading_kwargs(text="6"))
    correct_reading(session, review.id, 42, "66")
    record_reading(session, **reading_kwargs(text="78"))  # pending
    record_reading(session, **reading_kwargs(telegram_id=7, text="9"))  # someone else
    set_training_consent(session, 42, False)
    session.commit()

    stats = user_stats(session, 42)
    assert stats.known and not stats.training_allowed
    assert (stats.readings, stats.pending, stats.confirmed, stats.corrected, stats.review) == (
        4,
        1,
        1,
        1,
        1,
    )
    assert (stats.digits, stats.digits_labelled, stats.digits_correct) == (8, 5, 4)
    assert stats.accuracy == pytest.approx(4 / 5)
    assert stats.first_seen is not None


def _record_with_image(
    session: Session, store: ImageStore, reading_kwargs, telegram_id: int, data: bytes
) -> Reading:
    stored = store.put(data)
    return record_reading(
        session,
        **reading_kwargs(
            telegram_id=telegram_id, image_sha256=stored.sha256, image_path=str(stored.path)
        ),
    )


def test_forget_user_deletes_rows_and_images_after_commit(
    factory: sessionmaker[Session], reading_kwargs, tmp_path: Path
) -> None:
    store = ImageStore(tmp_path / "images")
    own, shared, other = b"\x89PNG\r\n\x1a\nown", b"\xff\xd8\xffshared", b"\xff\xd8\xffother"
    with session_scope(factory) as session:
        first = _record_with_image(session, store, reading_kwargs, 1, own)
        _record_with_image(session, store, reading_kwargs, 1, own)  # same photo twice
        _record_with_image(session, store, reading_kwargs, 1, shared)
        _record_with_image(session, store, reading_kwargs, 2, shared)  # forwarded to user 2
        _record_with_image(session, store, reading_kwargs, 2, other)
        confirm_reading(session, first.id, 1)
    own_sha, shared_sha = store.put(own).sha256, store.put(shared).sha256

    with session_scope(factory) as session:
        result = forget_user(session, 1)
        assert result.found
        assert (result.readings_deleted, result.digits_deleted) == (3, 9)
        assert result.unreferenced_images == [own_sha]  # the shared image is still used
        assert store.exists(own_sha)  # nothing deleted before the commit
    with factory() as session:
        assert delete_unreferenced_images(session, store, result.unreferenced_images) == [own_sha]
    assert not store.exists(own_sha) and store.exists(shared_sha)

    with factory() as session:
        assert get_user(session, 1) is None
        owners = session.scalars(select(User.telegram_id)).all()
        assert owners == [2]
        assert session.scalar(select(func.count()).select_from(Reading)) == 2
        assert session.scalar(select(func.count()).select_from(Digit)) == 6
        assert labelled_digits(session, holdout_fraction=0.2) == []
        assert user_stats(session, 1).known is False
        assert forget_user(session, 1).found is False  # twice is fine

    # user 2 goes too: now the shared image is unreferenced
    with session_scope(factory) as session:
        result = forget_user(session, 2)
    assert shared_sha in result.unreferenced_images
    with factory() as session:
        delete_unreferenced_images(session, store, result.unreferenced_images)
    assert list(store.iter_sha256()) == []


def test_forget_rolled_back_loses_nothing(
    factory: sessionmaker[Session], reading_kwargs, tmp_path: Path
) -> None:
    store = ImageStore(tmp_path / "images")
    with session_scope(factory) as session:
        reading = _record_with_image(session, store, reading_kwargs, 1, b"\xff\xd8\xffpic")
        sha = reading.image_sha256
    with pytest.raises(RuntimeError), session_scope(factory) as session:
        result = forget_user(session, 1)
        assert result.unreferenced_images == [sha]
        raise RuntimeError("crash before commit")
    with factory() as session:
        assert get_user(session, 1) is not None
        assert session.scalar(select(func.count()).select_from(Digit)) == 3
        # a stale list of "unreferenced" images is re-checked and nothing is deleted
        assert delete_unreferenced_images(session, store, [sha]) == []
    assert store.exists(sha)  # type: ignore[arg-type]


def test_forget_keeps_an_image_someone_sent_meanwhile(
    factory: sessionmaker[Session], reading_kwargs, tmp_path: Path
) -> None:
    store = ImageStore(tmp_path / "images")
    data = b"\xff\xd8\xffsame"
    with session_scope(factory) as session:
        _record_with_image(session, store, reading_kwargs, 1, data)
    with session_scope(factory) as session:
        result = forget_user(session, 1)
    with session_scope(factory) as session:  # user 2 sends the same image before cleanup
        _record_with_image(session, store, reading_kwargs, 2, data)
    with factory() as session:
        assert delete_unreferenced_images(session, store, result.unreferenced_images) == []
    assert store.exists(result.unreferenced_images[0])
