"""Training data (consent, blocking, since, sources, per-user split), model versions, runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db import (
    InvalidInput,
    InvalidTransition,
    LabelSource,
    ModelStatus,
    ModelVersionExists,
    ModelVersionNotFound,
    RunStatus,
    Split,
    TrainingRunNotFound,
    activate_model_version,
    active_model_version,
    assign_splits,
    confirm_reading,
    correct_reading,
    finish_training_run,
    get_model_version,
    get_user,
    label_digits,
    labelled_digits,
    labelled_pictures,
    list_model_versions,
    list_training_runs,
    record_reading,
    register_model_version,
    reject_model_version,
    retire_model_version,
    set_blocked,
    set_training_consent,
    start_training_run,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)
SHA = "0123456789abcdef" * 4


def _confirmed(session: Session, reading_kwargs, telegram_id: int, text: str, at: datetime) -> int:
    reading = record_reading(session, **reading_kwargs(telegram_id=telegram_id, text=text, now=at))
    confirm_reading(session, reading.id, telegram_id, now=at)
    return reading.id


def test_labelled_digits_filters(session: Session, reading_kwargs) -> None:
    _confirmed(session, reading_kwargs, 1, "12", T0)
    corrected = record_reading(session, **reading_kwargs(telegram_id=1, text="34", now=T0))
    correct_reading(session, corrected.id, 1, "35", now=T0 + timedelta(days=2))
    _confirmed(session, reading_kwargs, 2, "5", T0)  # will opt out
    _confirmed(session, reading_kwargs, 3, "6", T0)  # will be blocked
    record_reading(session, **reading_kwargs(telegram_id=4, text="789"))  # never answered
    review = record_reading(session, **reading_kwargs(telegram_id=4, text="78", now=T0))
    correct_reading(session, review.id, 4, "788")  # count differs: no labels
    set_training_consent(session, 2, False)
    set_blocked(session, 3, True)
    session.commit()

    found = labelled_digits(session, holdout_fraction=0.2)
    assert sorted(d.label for d in found) == [1, 2, 3, 5]
    by_label = {d.label: d for d in found}
    assert by_label[5].source is LabelSource.CORRECTED and by_label[5].predicted == 4
    assert by_label[1].source is LabelSource.CONFIRMED
    assert all(type(d.crop) is bytes and len(d.crop) == 784 for d in found)
    user_1 = get_user(session, 1)
    assert user_1 is not None and {d.user_id for d in found} == {user_1.id}
    assert by_label[3].labelled_at == T0 + timedelta(days=2)
    assert by_label[3].created == T0

    later = labelled_digits(session, holdout_fraction=0.2, since=T0 + timedelta(days=1))
    assert sorted(d.label for d in later) == [3, 5]
    only_confirmed = labelled_digits(session, holdout_fraction=0.2, sources=["confirmed"])
    assert sorted(d.label for d in only_confirmed) == [1, 2]
    assert len(labelled_digits(session, holdout_fraction=0.2, limit=1)) == 1

    # consent given back: their digits return; unblocked likewise
    set_training_consent(session, 2, True)
    set_blocked(session, 3, False)
    assert sorted(d.label for d in labelled_digits(session, holdout_fraction=0.2)) == [
        1,
        2,
        3,
        5,
        5,
        6,
    ]


def test_labelled_pictures_are_the_answered_stored_pictures(
    session: Session, reading_kwargs
) -> None:
    """A picture's label is its whole text: confirmed, corrected (whatever the digit count)
    or typed where nothing was found. Unanswered, unstored, opted-out: not used."""

    def picture(telegram_id: int, text: str, sha: str, **over: object) -> int:
        kwargs = reading_kwargs(telegram_id=telegram_id, text=text, now=T0, image_sha256=sha)
        return record_reading(session, **(kwargs | over)).id

    confirmed = picture(1, "12 3", "a" * 64)
    confirm_reading(session, confirmed, 1, now=T0 + timedelta(hours=1))
    corrected = picture(1, "45", "b" * 64)
    correct_reading(session, corrected, 1, "4 5\n6", now=T0 + timedelta(hours=2))
    nothing = picture(2, "", "c" * 64, digits=[])  # nothing found; the user typed it
    correct_reading(session, nothing, 2, "789", now=T0 + timedelta(hours=3))
    picture(1, "1", "d" * 64)  # never answered
    unstored = record_reading(session, **reading_kwargs(telegram_id=1, text="2", now=T0))
    confirm_reading(session, unstored.id, 1, now=T0)
    opted_out = picture(3, "5", "e" * 64)
    confirm_reading(session, opted_out, 3, now=T0)
    set_training_consent(session, 3, False)
    session.commit()

    found = labelled_pictures(session, holdout_fraction=0.0)
    assert [(p.reading_id, p.text) for p in found] == [
        (confirmed, "12 3"),
        (corrected, "4 5\n6"),
        (nothing, "789"),
    ]
    assert found[2].image_sha256 == "c" * 64 and found[2].answered_at == T0 + timedelta(hours=3)
    # The user whose only answer is a picture with nothing found has a split now.
    assert get_user(session, 2).split is Split.TRAIN and found[2].split is Split.TRAIN
    assert labelled_pictures(session, holdout_fraction=0.0, split="holdout") == []
    later = labelled_pictures(session, holdout_fraction=0.0, since=T0 + timedelta(hours=2))
    assert [p.reading_id for p in later] == [corrected, nothing]
    with pytest.raises(InvalidInput, match="split must be"):
        labelled_pictures(session, holdout_fraction=0.0, split="test")


def test_aligned_labels_are_training_data(session: Session, reading_kwargs) -> None:
    reading = record_reading(session, **reading_kwargs(telegram_id=1, text="12"))
    correct_reading(session, reading.id, 1, "123")
    label_digits(session, reading.id, [1, 2], LabelSource.ALIGNED)
    found = labelled_digits(session, holdout_fraction=0.2, sources=[LabelSource.ALIGNED])
    assert [(d.label, d.source) for d in found] == [(1, "aligned"), (2, "aligned")]


def test_split_by_user_is_disjoint_persistent_and_growing(session: Session, reading_kwargs) -> None:
    for user in range(1, 11):
        _confirmed(session, reading_kwargs, user, "1234", T0)
    session.commit()
    train = labelled_digits(session, split="train", holdout_fraction=0.2)
    holdout = labelled_digits(session, split=Split.HOLDOUT, holdout_fraction=0.2)
    session.commit()
    train_users = {d.user_id for d in train}
    holdout_users = {d.user_id for d in holdout}
    assert train_users.isdisjoint(holdout_users)
    assert len(holdout_users) == 2 and len(train_users) == 8
    assert len(train) + len(holdout) == 40
    assert {d.split for d in holdout} == {Split.HOLDOUT}

    # more data from existing users stays on their side; the fraction no longer matters
    _confirmed(session, reading_kwargs, 1, "99", T0 + timedelta(days=1))
    again = labelled_digits(session, split="holdout", holdout_fraction=0.9)
    assert {d.user_id for d in again} == holdout_users

    # new users join the split, and the holdout grows with them
    for user in range(11, 21):
        _confirmed(session, reading_kwargs, user, "5", T0)
    assert assign_splits(session, 0.2) == 10
    assert assign_splits(session, 0.2) == 0
    holdout_now = {
        d.user_id for d in labelled_digits(session, holdout_fraction=0.2, split="holdout")
    }
    assert holdout_users < holdout_now and len(holdout_now) == 4


def test_users_without_consent_get_no_split(session: Session, reading_kwargs) -> None:
    _confirmed(session, reading_kwargs, 1, "1", T0)
    set_training_consent(session, 1, False)
    record_reading(session, **reading_kwargs(telegram_id=2, text="2"))  # no labels yet
    assert assign_splits(session, 0.2) == 0
    assert get_user(session, 1).split is None  # type: ignore[union-attr]
    assert get_user(session, 2).split is None  # type: ignore[union-attr]


def test_split_arguments_are_checked(session: Session) -> None:
    with pytest.raises(InvalidInput, match="split"):
        labelled_digits(session, holdout_fraction=0.2, split="test")
    with pytest.raises(InvalidInput, match="holdout_fraction"):
        labelled_digits(session, holdout_fraction=1.5)
    with pytest.raises(InvalidInput, match="label source"):
        labelled_digits(session, holdout_fraction=0.2, sources=["guessed"])
    with pytest.raises(InvalidInput, match="naive"):
        labelled_digits(session, holdout_fraction=0.2, since=datetime(2026, 1, 1))


def _register(session: Session, version: str, **kwargs) -> object:
    values = {
        "version": version,
        "path": f"data/models/{version}.pt",
        "sha256": SHA,
        "parent_version": None,
        "data_summary": {"mnist": 60000, "user_digits": 10},
        "metrics": {"mnist_test_acc": 0.995},
    } | kwargs
    return register_model_version(session, **values)


def test_model_versions_lifecycle(session: Session) -> None:
    base = _register(session, "v1", status="active", now=T0)
    assert base.status is ModelStatus.ACTIVE and base.activated_at == T0
    child = _register(session, "v2", parent_version="v1", now=T0 + timedelta(hours=1))
    assert child.status is ModelStatus.CANDIDATE
    session.commit()

    activate_model_version(session, "v2")
    session.commit()
    assert active_model_version(session).version == "v2"  # type: ignore[union-attr]
    assert get_model_version(session, "v1").status is ModelStatus.RETIRED
    # rollback to v1
    activate_model_version(session, "v1")
    assert get_model_version(session, "v2").status is ModelStatus.RETIRED
    assert activate_model_version(session, "v1").status is ModelStatus.ACTIVE  # no-op

    _register(session, "v3", parent_version="v1", metrics={"mnist_test_acc": 0.9})
    rejected = reject_model_version(session, "v3", reason="MNIST accuracy dropped")
    assert rejected.status is ModelStatus.REJECTED and "dropped" in (rejected.notes or "")
    with pytest.raises(InvalidTransition, match="rejected"):
        activate_model_version(session, "v3")
    with pytest.raises(InvalidTransition, match="active"):
        reject_model_version(session, "v1")
    retire_model_version(session, "v2")
    session.commit()

    assert [m.version for m in list_model_versions(session)] == ["v1", "v2", "v3"]
    stored = get_model_version(session, "v2")
    assert stored.parent_version == "v1"
    assert stored.data_summary == {"mnist": 60000, "user_digits": 10}
    assert stored.metrics == {"mnist_test_acc": 0.995}


def test_model_version_errors(session: Session) -> None:
    _register(session, "v1")
    with pytest.raises(ModelVersionExists):
        _register(session, "v1")
    with pytest.raises(ModelVersionNotFound):
        _register(session, "v2", parent_version="nope")
    with pytest.raises(ModelVersionNotFound):
        activate_model_version(session, "nope")
    with pytest.raises(InvalidInput, match="SHA-256"):
        _register(session, "v4", sha256="xyz")
    with pytest.raises(InvalidInput, match="JSON"):
        _register(session, "v5", metrics={"acc": float("nan")})
    with pytest.raises(InvalidInput, match="dict"):
        _register(session, "v6", data_summary=[1, 2])
    with pytest.raises(InvalidInput, match="status"):
        _register(session, "v7", status="golden")
    with pytest.raises(InvalidInput, match="lone surrogate"):
        _register(session, "v8\udc80")
    with pytest.raises(InvalidInput, match=r"model path .*lone surrogate"):
        _register(session, "v9", path="models/\udcff.pt")
    with pytest.raises(InvalidInput, match=r"notes .*lone surrogate"):
        _register(session, "v10", notes="bad \ud800 note")
    with pytest.raises(InvalidInput, match=r"metrics .*lone surrogate"):
        _register(session, "v11", metrics={"note": "\ud800"})
    assert active_model_version(session) is None
    assert [m.version for m in list_model_versions(session)] == ["v1"]


def test_database_enforces_one_active_model(session: Session) -> None:
    _register(session, "v1", status="active")
    _register(session, "v2")
    session.commit()
    with pytest.raises(IntegrityError):
        session.execute(text("UPDATE model_versions SET status = 'active' WHERE version = 'v2'"))
    session.rollback()
    assert active_model_version(session).version == "v1"  # type: ignore[union-attr]


def test_training_runs(session: Session) -> None:
    _register(session, "v2")
    run = start_training_run(session, {"epochs": 3, "lr": 1e-3}, now=T0)
    assert run.status is RunStatus.RUNNING and run.finished_at is None
    session.commit()
    done = finish_training_run(
        session,
        run.id,
        status="succeeded",
        mnist_samples=30000,
        user_samples=120,
        metrics={"mnist_test_acc": 0.996},
        model_version="v2",
        now=T0 + timedelta(minutes=5),
    )
    assert done.status is RunStatus.SUCCEEDED and done.model_version == "v2"
    with pytest.raises(InvalidTransition, match="already finished"):
        finish_training_run(
            session, run.id, status="failed", mnist_samples=0, user_samples=0, metrics=None
        )

    failed = start_training_run(session, {"epochs": 3})
    finish_training_run(
        session,
        failed.id,
        status=RunStatus.FAILED,
        mnist_samples=None,
        user_samples=None,
        metrics=None,
        error="CUDA out of memory",
    )
    skipped = start_training_run(session, {})
    finish_training_run(
        session, skipped.id, status="skipped", mnist_samples=0, user_samples=3, metrics={}
    )
    session.commit()
    runs = list_training_runs(session)
    assert [r.status for r in runs][-1] is RunStatus.SUCCEEDED
    assert {r.status for r in runs} == {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.SKIPPED}
    assert next(r for r in runs if r.status is RunStatus.FAILED).error == "CUDA out of memory"

    with pytest.raises(TrainingRunNotFound):
        finish_training_run(
            session, 999_999, status="failed", mnist_samples=0, user_samples=0, metrics=None
        )
    bad = start_training_run(session, {})
    with pytest.raises(InvalidInput, match="final status"):
        finish_training_run(
            session, bad.id, status="running", mnist_samples=0, user_samples=0, metrics=None
        )
    with pytest.raises(InvalidInput, match=">= 0"):
        finish_training_run(
            session, bad.id, status="failed", mnist_samples=-1, user_samples=0, metrics=None
        )
    with pytest.raises(ModelVersionNotFound):
        finish_training_run(
            session,
            bad.id,
            status="succeeded",
            mnist_samples=1,
            user_samples=0,
            metrics={},
            model_version="nope",
        )
    with pytest.raises(InvalidInput, match="params"):
        start_training_run(session, "epochs=3")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match=r"error .*lone surrogate"):
        finish_training_run(
            session,
            bad.id,
            status="failed",
            mnist_samples=0,
            user_samples=0,
            metrics=None,
            error="cannot open /data/\udcff.png",
        )
    with pytest.raises(InvalidInput, match="32-bit"):
        finish_training_run(
            session, bad.id, status="failed", mnist_samples=2**40, user_samples=0, metrics=None
        )
