"""Marks: what a correction with fewer digits shows the reader cut that was no digit."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from loop_fixtures import sqlite_url

import db
from training.data.fields import draw_field
from training.label_recovery import aligned_records
from training.marks import MARK_LABEL, collect_marks, extra_cuts
from training.retrain import RetrainConfig, _sample_weights, reads_right, retrain
from vision.annotate import encode_png
from vision.checkpoint import load_checkpoint
from vision.classifier import NOT_A_DIGIT_KEY, DigitClassifier
from vision.reader import DigitReader


def test_a_separator_read_as_a_digit_is_the_extra_cut() -> None:
    # "12.34" read as 1 2 1 3 4: the third cut is the dot.
    assert extra_cuts([1, 2, 1, 3, 4], [0.99, 0.98, 0.6, 0.97, 0.99], [1, 2, 3, 4]) == [2]


def test_of_two_equal_alignments_the_less_confident_cut_is_the_mark() -> None:
    # "11234" for "1234": either 1 could be the mark; the unsure one is.
    assert extra_cuts([1, 1, 2, 3, 4], [0.55, 0.99, 0.9, 0.9, 0.9], [1, 2, 3, 4]) == [0]
    assert extra_cuts([1, 1, 2, 3, 4], [0.99, 0.55, 0.9, 0.9, 0.9], [1, 2, 3, 4]) == [1]


def test_misread_digits_still_line_up_and_many_marks_are_found() -> None:
    # A border read as 1 on both sides, and the 7 misread as 1 (a European 7).
    assert extra_cuts([1, 4, 1, 0, 0, 1], [0.6, 0.9, 0.8, 0.9, 0.9, 0.5], [4, 7, 0, 0]) == [0, 5]


def test_nothing_is_said_when_the_reading_does_not_line_up() -> None:
    assert extra_cuts([5, 6, 8, 9, 3], [0.9] * 5, [1, 2, 3, 4]) == []
    assert extra_cuts([1, 2], [0.9, 0.9], [1, 2, 3]) == []  # fewer cuts: no mark
    assert extra_cuts([1, 2], [0.9, 0.9], [1, 2]) == []


def test_sample_weights_give_marks_a_fixed_share() -> None:
    w = _sample_weights(n_mnist=100, n_digits=30, n_marks=300, user_fraction=0.5)
    assert len(w) == 430 and w.sum() == pytest.approx(1.0)
    assert w[:100].sum() == pytest.approx(0.5)
    assert w[130:].sum() == pytest.approx(0.1)  # MARK_SHARE of the users' half
    assert _sample_weights(100, 30, 0, 0.5)[100:].sum() == pytest.approx(0.5)


def test_reads_right_counts_marks_and_dropped_digits() -> None:
    class Fixed:
        rejects_marks = True

        def classify(self, x: np.ndarray) -> np.ndarray:
            out = np.zeros((len(x), 10), np.float32)
            out[0, 3] = 0.9  # a 3, kept
            out[1, 3] = 0.3  # a 3 whose "not a digit" wins: dropped
            out[2, 5] = 0.1  # dropped
            return out

    x = np.zeros((3, 28, 28), np.uint8)
    right = reads_right(Fixed(), x, np.array([3, 3, MARK_LABEL]))  # type: ignore[arg-type]
    assert right.tolist() == [True, False, True]


@pytest.fixture(scope="module")
def mnist_small(mnist):
    train, test = mnist
    return (train.images[:3000], train.labels[:3000]), (test.images[:300], test.labels[:300])


@pytest.mark.slow
def test_corrections_with_fewer_digits_teach_the_model_marks(tmp_path: Path, mnist_small) -> None:
    """End to end on a tiny dataset: users correct guilloche fields read with extra digits;
    retrain collects the marks from the stored pictures and trains an 11-class model that
    the reader then uses to drop marks."""
    train, test = mnist_small
    url = sqlite_url(tmp_path / "data")
    store = db.ImageStore(tmp_path / "data" / "images")
    reader = DigitReader.load()
    rng = np.random.default_rng(3)
    now = datetime.now(UTC) - timedelta(hours=1)
    engine = db.make_engine(url)
    factory = db.make_session_factory(engine)
    review = 0
    for k in range(40):
        field = draw_field(rng, train, background="guilloche", separators=True, n_digits=4)
        png = encode_png(field.image)
        read = reader.read(png)
        if not read.digits:
            continue
        user = 500 + k % 5
        now += timedelta(seconds=1)
        with db.session_scope(factory) as session:
            stored = store.put(png)
            row = db.record_reading(
                session,
                telegram_id=user,
                chat_id=user,
                message_id=None,
                file_unique_id=None,
                image_sha256=stored.sha256,
                image_path=str(stored.path),
                width=read.width,
                height=read.height,
                model_version=reader.classifier.version,
                text=read.text,
                digits=aligned_records(read),
                elapsed_ms=1.0,
                now=now,
            )
            if "".join(str(d.label) for d in read.digits) == field.text:
                db.confirm_reading(session, row.id, user, now=now)
            elif not db.correct_reading(session, row.id, user, field.text, now=now).labelled:
                review += 1
    assert review >= 5, "the guilloche fields should be read with extra digits"
    with db.session_scope(factory) as session:
        db.assign_splits(session, 0.2)
        pictures = db.corrected_pictures(session, split="train")
    assert pictures and all(p.split is db.Split.TRAIN for p in pictures)
    marks = collect_marks(factory, reader, store, split="train")
    assert marks.pictures == len(pictures) and len(marks.crops) >= 20
    assert marks.crops.dtype == np.uint8 and marks.crops.shape[1:] == (28, 28)

    config = RetrainConfig(
        epochs=2,
        lr=2e-3,
        user_fraction=0.5,
        min_new_labels=0,
        max_mnist_drop=100.0,
        min_user_gain=-100.0,
        min_gain_digits=-(10**6),
        max_p_value=1.0,
        holdout_fraction=0.2,
        epoch_size=1024,
        threads=1,
        recover_labels=False,
    )
    outcome = retrain(
        factory,
        models_dir=tmp_path / "data" / "models",
        mnist_train=train,
        mnist_test=test,
        config=config,
        images=store,
        progress=False,
    )
    engine.dispose()
    assert outcome.status == "promoted", outcome.reason
    assert outcome.marks_train == len(marks.crops)
    with db.session_scope(db.make_session_factory(db.make_engine(url))) as session:
        path = Path(db.active_model_version(session).path)
    body = load_checkpoint(path)
    assert body[NOT_A_DIGIT_KEY] is True and body["model_config"]["classes"] == 11
    assert asdict(outcome)["marks_train"] > 0
    learned = DigitClassifier.load(path)
    assert learned.rejects_marks and not DigitClassifier.load().rejects_marks
    # The marks it was shown now draw more "not a digit" than before.
    before = DigitClassifier.load().classify(marks.crops).sum(1)
    after = learned.classify(marks.crops).sum(1)
    assert after.mean() < before.mean() - 0.05
