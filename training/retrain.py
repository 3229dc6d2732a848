"""The learning loop: fine-tune the active model on MNIST replay + users' labelled digits,
then promote the candidate only if it passes the gate.

Crash safety: the candidate file is written atomically under a new name, and the database
learns about it (register + activate/reject + finish the run) in one transaction after the
file is complete. A kill at any moment leaves the active version and its file untouched; a
run left "running" by a dead process is marked failed by the next run (which holds the
lock, so no other run can be alive).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

import db
from db import ModelStatus, RunStatus
from training.data.augment import AugmentConfig
from training.data.lines import FieldKinds, LineSet, draw_lines, jitter_band
from training.lines import LineTrainConfig, LineTrainResult, line_payload, train_lines
from training.user_lines import picture_bands, text_lines
from vision.checkpoint import (
    LINES_KEY,
    CheckpointError,
    file_sha256,
    load_checkpoint,
    save_checkpoint,
)
from vision.classifier import DEFAULT_MODEL_PATH, DigitClassifier
from vision.decode import ImageError
from vision.line_model import LineConfig
from vision.line_reader import LINE_MODEL_PATH, LineReader, line_body
from vision.model import ModelConfig
from vision.reader import DigitReader

log = logging.getLogger(__name__)

# Fine-tuning augmentation: gentler than training from scratch. The users' digits are the
# real distribution; heavy distortion would teach the model less about them.
FINE_TUNE_AUGMENT = AugmentConfig(
    p_clean=0.5,
    rotate_deg=8.0,
    scale=(0.9, 1.08),
    aspect=0.1,
    shear=0.15,
    shift_px=1.5,
    p_elastic=0.3,
    elastic_px=1.0,
    p_thick=0.1,
    p_thin=0.05,
    p_blur=0.1,
    p_noise=0.1,
    p_euro=0.2,
)


# Drawn replay bands for one line fine-tuning run, at most (drawing is ~2 ms a band).
MAX_LINE_REPLAY = 20_000
# Times each user band is seen in one line fine-tuning run (in differently jittered cuts).
LINE_PASSES = 30


class RetrainError(RuntimeError):
    """The loop cannot run (no usable active model, bad configuration)."""


@dataclass
class RetrainConfig:
    """Everything that shapes one retrain run (stored with the run and the checkpoint)."""

    # From the settings (declared once, with their defaults, in digits/settings.py).
    epochs: int
    lr: float  # peak; from-scratch training uses 4e-3, fine-tuning far less
    user_fraction: float  # share of each epoch drawn from users' digits
    min_new_labels: int
    # The promotion gate (see `decide`): MNIST may drop at most this many points below
    # the model it replaces AND below the shipped baseline; the user holdout must gain.
    max_mnist_drop: float  # percentage points of MNIST test accuracy
    min_user_gain: float  # percentage points of user-holdout accuracy
    min_gain_digits: int  # holdout digits the candidate gets right net of new errors
    max_p_value: float  # one-sided exact sign test on the digits the two disagree on
    holdout_fraction: float
    epoch_size: int  # 0: enough that each user digit is drawn about once per epoch
    line_steps: int  # fine-tuning steps of the line model on users' pictures (0: none)
    line_lr: float
    # How this run trains.
    batch_size: int = 128
    augment: bool = True
    seed: int = 0
    device: str | None = None
    threads: int | None = None
    recover_labels: bool = True
    force: bool = False  # run even with fewer than min_new_labels new labels

    def validate(self) -> None:
        if self.epochs < 1:
            raise RetrainError(f"epochs must be >= 1, got {self.epochs}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise RetrainError(f"learning rate must be > 0, got {self.lr}")
        if not 0.0 < self.user_fraction <= 1.0:
            raise RetrainError(f"user fraction must be in (0, 1], got {self.user_fraction}")
        if not 0.0 <= self.holdout_fraction < 1.0:
            raise RetrainError(f"holdout fraction must be in [0, 1), got {self.holdout_fraction}")
        if self.min_new_labels < 0 or self.epoch_size < 0 or self.batch_size < 1:
            raise RetrainError("min_new_labels and epoch_size must be >= 0, batch_size >= 1")
        if self.line_steps < 0:
            raise RetrainError(f"line steps must be >= 0, got {self.line_steps}")
        if not (math.isfinite(self.line_lr) and self.line_lr > 0):
            raise RetrainError(f"the line model's learning rate must be > 0, got {self.line_lr}")
        if not 0.0 < self.max_p_value <= 1.0:
            raise RetrainError(f"the gate's p-value must be in (0, 1], got {self.max_p_value}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def gate(self) -> Gate:
        return Gate(
            max_mnist_drop=self.max_mnist_drop,
            min_user_gain=self.min_user_gain,
            min_gain_digits=self.min_gain_digits,
            max_p_value=self.max_p_value,
        )


@dataclass
class Scores:
    """One model on the gate's data: MNIST test and the users' holdout."""

    mnist_test_accuracy: float
    user_holdout_accuracy: float | None
    user_holdout_samples: int
    # Per holdout digit: read right? (for the paired test; not part of the summary)
    holdout_right: np.ndarray | None = field(default=None, repr=False, compare=False)
    # The holdout users' answered pictures, read whole: segmentation included.
    pictures_exact: float | None = None
    pictures: int = 0
    pictures_right: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mnist_test_accuracy": round(self.mnist_test_accuracy, 6),
            "user_holdout_accuracy": None
            if self.user_holdout_accuracy is None
            else round(self.user_holdout_accuracy, 6),
            "user_holdout_samples": self.user_holdout_samples,
            "pictures_exact": None
            if self.pictures_exact is None
            else round(self.pictures_exact, 6),
            "pictures": self.pictures,
        }


@dataclass
class RetrainOutcome:
    """What happened; `to_dict` is the one-line JSON summary the bot relays."""

    status: str  # promoted | rejected | skipped | failed
    reason: str
    run_id: int | None = None
    version: str | None = None
    parent: str | None = None
    new_labels: int = 0
    user_train_samples: int = 0
    user_holdout_samples: int = 0
    mnist_samples: int = 0
    active: Scores | None = None
    candidate: Scores | None = None
    baseline: str | None = None  # the shipped version MNIST is bounded against
    baseline_mnist: float | None = None
    holdout_gained: int = 0  # holdout digits the candidate gets right, the active did not
    holdout_lost: int = 0  # ... and the reverse
    p_value: float | None = None  # the gate's sign test on those
    pictures_gained: int = 0  # holdout pictures the candidate reads exactly, the active not
    pictures_lost: int = 0
    recovery: dict[str, int] = field(default_factory=dict)
    line_data: dict[str, int] = field(default_factory=dict)  # users' pictures cut into bands
    line_model: str | None = None  # the line model the candidate reads with
    seconds: float = 0.0
    train_seconds: float = 0.0
    line_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        raw = {
            k: getattr(self, k)
            for k in self.__dataclass_fields__
            if k not in {"active", "candidate"}
        }
        raw["recovery"] = dict(self.recovery)
        raw["line_data"] = dict(self.line_data)
        if self.baseline_mnist is not None:
            raw["baseline_mnist"] = round(self.baseline_mnist, 6)
        if self.p_value is not None:
            raw["p_value"] = round(self.p_value, 6)
        raw["active"] = self.active.to_dict() if self.active else None
        raw["candidate"] = self.candidate.to_dict() if self.candidate else None
        raw["seconds"] = round(self.seconds, 1)
        raw["train_seconds"] = round(self.train_seconds, 1)
        raw["line_seconds"] = round(self.line_seconds, 1)
        return raw


@dataclass(frozen=True)
class Gate:
    """The promotion gate's thresholds (from settings; see `decide`)."""

    max_mnist_drop: float
    min_user_gain: float
    min_gain_digits: int
    max_p_value: float


def sign_test_p(gained: int, lost: int) -> float:
    """One-sided exact sign (McNemar) test: P(at least `gained` of the `gained + lost`
    digits the two models disagree on favour the candidate, if neither model is better)."""
    n = gained + lost
    if n == 0:
        return 1.0
    return sum(math.comb(n, k) for k in range(gained, n + 1)) / 2**n


def picture_changes(active: Scores, candidate: Scores) -> tuple[int, int]:
    """(holdout pictures the candidate reads exactly that the active did not, the reverse)."""
    if candidate.pictures_right is None or active.pictures_right is None:
        return 0, 0
    gained = int((candidate.pictures_right & ~active.pictures_right).sum())
    return gained, int((active.pictures_right & ~candidate.pictures_right).sum())


def holdout_changes(active: Scores, candidate: Scores) -> tuple[int, int]:
    """(digits the candidate reads right that the active model got wrong, the reverse)."""
    if candidate.holdout_right is not None and active.holdout_right is not None:
        gained = int((candidate.holdout_right & ~active.holdout_right).sum())
        lost = int((active.holdout_right & ~candidate.holdout_right).sum())
        return gained, lost
    # Counts only: every change taken as one-directional (the most favourable case).
    if candidate.user_holdout_accuracy is None or active.user_holdout_accuracy is None:
        return 0, 0
    net = round(
        (candidate.user_holdout_accuracy - active.user_holdout_accuracy)
        * candidate.user_holdout_samples
    )
    return max(net, 0), max(-net, 0)


def decide(
    active: Scores,
    candidate: Scores,
    gate: Gate,
    *,
    baseline_mnist: float | None = None,
) -> tuple[bool, str]:
    """The promotion gate: (promote?, why). A candidate is promoted only when

    * MNIST test is at most `max_mnist_drop` points below the model it replaces AND below
      the shipped baseline (`baseline_mnist`), so no chain of small drops adds up;
    * on the users' holdout it gains: on their digits (each crop read alone) or on their
      pictures (each read whole, exactly, segmentation included) it reads at least
      `min_gain_digits` more right, net of the ones it now gets wrong, the paired sign
      test on those the two disagree on gives p <= `max_p_value`, and the accuracy gain
      is >= `min_user_gain` points. "Not worse" is not enough: retraining on the same
      data must not drift;
    * and on neither does it get more wrong than it newly gets right.

    Without a user holdout no gain can be measured, and nothing is promoted.
    """
    mnist_delta = 100.0 * (candidate.mnist_test_accuracy - active.mnist_test_accuracy)
    parts = [f"MNIST test {mnist_delta:+.2f} pt (limit -{gate.max_mnist_drop:.2f})"]
    ok = mnist_delta >= -gate.max_mnist_drop - 1e-9
    if baseline_mnist is not None:
        base_delta = 100.0 * (candidate.mnist_test_accuracy - baseline_mnist)
        parts.append(f"{base_delta:+.2f} pt against the shipped baseline")
        ok = ok and base_delta >= -gate.max_mnist_drop - 1e-9
    measures = []
    if candidate.user_holdout_accuracy is not None and active.user_holdout_accuracy is not None:
        measures.append(
            (
                "user holdout",
                "digits",
                candidate.user_holdout_accuracy - active.user_holdout_accuracy,
                candidate.user_holdout_samples,
                *holdout_changes(active, candidate),
            )
        )
    if candidate.pictures_exact is not None and active.pictures_exact is not None:
        measures.append(
            (
                "holdout pictures read exactly",
                "pictures",
                candidate.pictures_exact - active.pictures_exact,
                candidate.pictures,
                *picture_changes(active, candidate),
            )
        )
    if not measures:
        parts.append("no user holdout yet, so no gain can be measured")
        return False, "rejected: " + "; ".join(parts)
    gains, losses = [], []
    for name, unit, delta, count, gained, lost in measures:
        p = sign_test_p(gained, lost)
        parts.append(
            f"{name} {100.0 * delta:+.2f} pt on {count} {unit} "
            f"(needs >= {gate.min_user_gain:+.2f}): {gained} {unit} gained, {lost} lost "
            f"(needs a net {gate.min_gain_digits:+d}), sign test p={p:.3f} "
            f"(needs <= {gate.max_p_value:g})"
        )
        gains.append(
            100.0 * delta >= gate.min_user_gain - 1e-9
            and gained - lost >= gate.min_gain_digits
            and p <= gate.max_p_value + 1e-12
        )
        losses.append(lost > gained)
    ok = ok and any(gains) and not any(losses)
    return ok, ("promoted: " if ok else "rejected: ") + "; ".join(parts)


def accuracy_of(clf: DigitClassifier, images: np.ndarray, labels: np.ndarray) -> float | None:
    if len(images) == 0:
        return None
    return float((clf.classify(images).argmax(1) == np.asarray(labels)).mean())


def score(
    clf: DigitClassifier,
    mnist_test: tuple[np.ndarray, np.ndarray],
    holdout: tuple[np.ndarray, np.ndarray],
) -> Scores:
    mnist = accuracy_of(clf, *mnist_test)
    right = None
    if len(holdout[1]):
        right = clf.classify(holdout[0]).argmax(1) == np.asarray(holdout[1])
    return Scores(
        mnist_test_accuracy=mnist if mnist is not None else 0.0,
        user_holdout_accuracy=None if right is None else float(right.mean()),
        user_holdout_samples=len(holdout[1]),
        holdout_right=right,
    )


def baseline_version(session: Session, version: str) -> Any:
    """The shipped model the active one descends from: the root of its parent chain."""
    current = db.get_model_version(session, version)
    seen = {current.version}
    while current.parent_version is not None and current.parent_version not in seen:
        seen.add(current.parent_version)
        current = db.get_model_version(session, current.parent_version)
    return current


def baseline_mnist(
    factory: sessionmaker[Session],
    active: ActiveModel,
    active_mnist: float,
    mnist_test: tuple[np.ndarray, np.ndarray],
    device: str | None,
) -> tuple[str, float]:
    """(version, MNIST test accuracy) of the shipped baseline, measured on this test set."""
    with db.session_scope(factory) as session:
        root = baseline_version(session, active.version)
        name, path, sha = root.version, Path(root.path), root.sha256
    if name == active.version:
        return name, active_mnist
    if not path.is_file() or file_sha256(path) != sha:
        raise RetrainError(
            f"the shipped baseline {name} ({path}) is missing or changed: the gate bounds "
            "MNIST against it, so no candidate can be judged"
        )
    accuracy = accuracy_of(DigitClassifier.load(path, device=device), *mnist_test)
    return name, accuracy if accuracy is not None else 0.0


def crops_of(digits: list[db.LabelledDigit]) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [N, 28, 28] crops and int64 labels from stored digits."""
    if not digits:
        return np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64)
    images = np.frombuffer(b"".join(d.crop for d in digits), np.uint8).reshape(-1, 28, 28)
    return images.copy(), np.array([d.label for d in digits], np.int64)


def active_lines_body(body: dict[str, Any]) -> dict[str, Any]:
    """The line model a version reads with: the one its checkpoint carries, else shipped."""
    if isinstance(body.get(LINES_KEY), dict):
        return body[LINES_KEY]
    return line_body(load_checkpoint(LINE_MODEL_PATH), LINE_MODEL_PATH)


def fine_tune_lines(
    config: RetrainConfig,
    lines_body: dict[str, Any],
    user_lines: LineSet,
    mnist_train: tuple[np.ndarray, np.ndarray],
    *,
    progress: bool,
) -> LineTrainResult:
    """The line model fine-tuned on users' bands, with fresh drawn bands as replay.

    The replay is drawn like the line model's own training data (its checkpoint's
    `data`), so nothing it never saw is taught by the replay; users' bands make
    `user_fraction` of every batch.
    """
    f = config.user_fraction
    batch = LineTrainConfig().batch_size
    # Effort follows the data: each user band is seen about LINE_PASSES times, within
    # the configured steps (a few pictures must not cost a full run).
    steps = min(config.line_steps, math.ceil(LINE_PASSES * len(user_lines) / (batch * f)))
    replay_n = min(MAX_LINE_REPLAY, round(steps * batch * (1.0 - f)))
    seen = lines_body.get("data") or {}
    kinds = FieldKinds(
        tuple(seen["backgrounds"]) if seen.get("backgrounds") else None,
        separators=bool(seen.get("separators", True)),
        european=float(seen.get("european", FieldKinds().european)),
    )
    replay = draw_lines(
        mnist_train,
        replay_n,
        seed=config.seed + 1000,
        photo_share=float(seen.get("photo_share", 1 / 3)),
        kinds=kinds,
    )
    repeat = max(1, round(replay_n * f / max(1e-9, 1.0 - f) / len(user_lines)))
    rng = np.random.default_rng(config.seed)
    jittered = [
        band if k == 0 else jitter_band(band, text, rng)
        for k in range(repeat)
        for band, text in zip(user_lines.bands, user_lines.texts, strict=True)
    ]
    train = LineSet(jittered, user_lines.texts * repeat) + replay
    line_config = LineTrainConfig(
        steps=steps,
        batch_size=batch,
        lr=config.line_lr,
        warmup_steps=max(1, steps // 10),
        seed=config.seed,
        threads=config.threads,
        device=config.device,
        model=LineConfig.from_dict(lines_body["model_config"]),
    )
    return train_lines(
        line_config, train, LineSet([], []), init=lines_body["state_dict"], progress=progress
    )


def pictures_read_exactly(
    readers: list[DigitReader],
    pictures: list[db.LabelledPicture],
    images: db.ImageStore,
    *,
    progress: bool = False,
) -> list[np.ndarray]:
    """Per reader, per picture that can still be read: does the reader read its text?

    Spaces between numbers do not count (users type them as they like); lines and digits do.
    """
    rows: list[list[bool]] = [[] for _ in readers]
    for picture in tqdm(pictures, desc="holdout pictures", unit="picture", disable=not progress):
        try:
            data = images.read(picture.image_sha256)
            texts = [text_lines(reader.read(data).text) for reader in readers]
        except (db.ImageNotFound, db.ImageCorrupt, ImageError):
            continue
        truth = text_lines(picture.text)
        for row, text in zip(rows, texts, strict=True):
            row.append(text == truth)
    return [np.array(row, bool) for row in rows]


# --- the registry side ---------------------------------------------------------------


@dataclass(frozen=True)
class ActiveModel:
    version: str
    path: Path
    sha256: str


def ensure_active_version(
    factory: sessionmaker[Session], default_model_path: Path | None = None
) -> ActiveModel:
    """The active version; with none, the shipped default model is registered and activated.

    So the first fine-tuned model has a parent in the registry, `digits models` lists the
    shipped one, and rolling back to it is one `digits models activate`. If the active
    version IS the shipped file and an upgrade replaced that file, the new file is
    registered as a version of its own (the bot already serves it); any other active file
    that no longer matches its registered hash is an error, never silently fine-tuned.
    """
    default = Path(default_model_path or DEFAULT_MODEL_PATH).resolve()
    with db.session_scope(factory) as session:
        active = db.active_model_version(session)
        if active is not None:
            path = Path(active.path)
            if not path.is_file():
                raise RetrainError(
                    f"the file of the active version {active.version} is missing ({path}): "
                    "activate another one with `digits models activate VERSION`"
                )
            if file_sha256(path) == active.sha256:
                return ActiveModel(active.version, path, active.sha256)
            if path.resolve() != default:
                raise RetrainError(
                    f"{path} no longer matches the sha256 registered for the active version "
                    f"{active.version}: restore it or `digits models activate` another version"
                )
            log.warning("the shipped model %s was replaced since %s was registered",
                        path, active.version)  # fmt: skip
        return _register_shipped(session, default)


def _register_shipped(session: Session, path: Path) -> ActiveModel:
    try:
        body = load_checkpoint(path)
    except CheckpointError as exc:
        raise RetrainError(f"no usable active model version, and the default fails: {exc}") from exc
    sha = file_sha256(path)
    base = str(body.get("version") or "default")[:40]
    existing = {v.version: v for v in db.list_model_versions(session)}
    name = base
    if name in existing and existing[name].sha256 != sha:
        name = f"{base}-{sha[:8]}"
    if name in existing and existing[name].sha256 == sha:
        if existing[name].status is ModelStatus.REJECTED:
            raise RetrainError(
                f"no usable active model version and the default {name!r} was rejected: "
                "activate one with `digits models activate VERSION`"
            )
        db.activate_model_version(session, name)
    else:
        db.register_model_version(
            session,
            version=name,
            path=str(path),
            sha256=sha,
            parent_version=None,
            data_summary={"shipped": True, **(body.get("summary") or {}).get("data", {})},
            metrics=dict(body.get("metrics") or {}),
            status=ModelStatus.ACTIVE,
            notes="the shipped default model, registered by retrain",
        )
    log.info("registered the shipped model %s (%s) as the active version", name, path)
    return ActiveModel(name, path, sha)


def fail_interrupted_runs(factory: sessionmaker[Session]) -> int:
    """Mark runs left 'running' by a dead process as failed (call while holding the lock)."""
    with db.session_scope(factory) as session:
        stale = db.running_training_runs(session)
        for run_id in stale:
            db.finish_training_run(
                session,
                run_id,
                status=RunStatus.FAILED,
                mnist_samples=None,
                user_samples=None,
                metrics=None,
                error="interrupted: the process running it stopped before it finished",
            )
    if stale:
        log.warning("marked %d interrupted training run(s) as failed", len(stale))
    return len(stale)


# --- the run ---------------------------------------------------------------------------


def retrain(
    factory: sessionmaker[Session],
    *,
    models_dir: Path,
    mnist_train: tuple[np.ndarray, np.ndarray],
    mnist_test: tuple[np.ndarray, np.ndarray],
    config: RetrainConfig,
    images: db.ImageStore | None = None,
    default_model_path: Path | None = None,
    progress: bool = True,
    on_stage: Callable[[str], None] | None = None,
) -> RetrainOutcome:
    """One run of the loop. The caller holds the run lock (see `training.runlock`)."""
    config.validate()
    started = time.perf_counter()

    def stage(name: str) -> None:
        log.info("retrain: %s", name)
        if on_stage:
            on_stage(name)

    fail_interrupted_runs(factory)
    # What killed runs and writers left: a model file written but never registered, temp
    # files, images no reading refers to. The lock is held: no model is being written.
    db.collect_garbage(factory, images=images, models_dir=models_dir, model_min_age_s=0.0)
    active = ensure_active_version(factory, default_model_path)
    with db.session_scope(factory) as session:
        run_id = db.start_training_run(
            session,
            {
                **config.to_dict(),
                "parent_version": active.version,
                "mnist_test": len(mnist_test[1]),
            },
        ).id
    outcome = RetrainOutcome(status="failed", reason="", run_id=run_id, parent=active.version)
    try:
        _run(factory, run_id, active, outcome, models_dir, mnist_train, mnist_test, config,
             images, progress, stage)  # fmt: skip
    except BaseException as exc:
        outcome.status = "failed"
        outcome.reason = f"{exc.__class__.__name__}: {exc}"
        log.exception("retrain run %d failed", run_id)
        with db.session_scope(factory) as session:
            db.finish_training_run(
                session,
                run_id,
                status=RunStatus.FAILED,
                mnist_samples=outcome.mnist_samples or None,
                user_samples=outcome.user_train_samples or None,
                metrics=None,
                error=outcome.reason[:2000],
            )
        if not isinstance(exc, Exception):
            raise
    outcome.seconds = time.perf_counter() - started
    return outcome


def _run(
    factory: sessionmaker[Session],
    run_id: int,
    active: ActiveModel,
    outcome: RetrainOutcome,
    models_dir: Path,
    mnist_train: tuple[np.ndarray, np.ndarray],
    mnist_test: tuple[np.ndarray, np.ndarray],
    config: RetrainConfig,
    images: db.ImageStore | None,
    progress: bool,
    stage: Callable[[str], None],
) -> None:
    stage(f"loading the active model {active.version}")
    body = load_checkpoint(active.path)
    active_clf = DigitClassifier.load(active.path, device=config.device)
    lines_body = active_lines_body(body)
    active_lines = LineReader.from_body(lines_body, device=config.device)
    active_reader = DigitReader.load(active_clf, lines=active_lines)

    if config.recover_labels and images is not None and images.enabled:
        from training.label_recovery import recover_labels

        stage("label recovery")
        report = recover_labels(factory, active_reader, images, progress=progress)
        outcome.recovery = report.to_dict()

    with db.session_scope(factory) as session:
        since = db.last_succeeded_run_start(session)
        new = db.labelled_digits(session, since=since, holdout_fraction=config.holdout_fraction)
        outcome.new_labels = len(new)
        train_digits = db.labelled_digits(
            session, split="train", holdout_fraction=config.holdout_fraction
        )
        holdout_digits = db.labelled_digits(
            session, split="holdout", holdout_fraction=config.holdout_fraction
        )
        stored = images is not None and images.enabled  # else no picture can be read
        pictures = {
            split: db.labelled_pictures(
                session, split=split, holdout_fraction=config.holdout_fraction
            )
            if stored
            else []
            for split in ("train", "holdout")
        }
    del new
    outcome.user_train_samples = len(train_digits)
    outcome.user_holdout_samples = len(holdout_digits)
    skip = None
    if outcome.new_labels < config.min_new_labels and not config.force:
        skip = (
            f"only {outcome.new_labels} new labelled digits since the last run "
            f"(needs {config.min_new_labels})"
        )
    elif not train_digits:
        skip = "no labelled digits on the training side of the user split yet"
    if skip:
        outcome.status, outcome.reason = "skipped", skip
        log.info("retrain skipped: %s", skip)
        with db.session_scope(factory) as session:
            db.finish_training_run(
                session,
                run_id,
                status=RunStatus.SKIPPED,
                mnist_samples=0,
                user_samples=len(train_digits),
                metrics={"new_labels": outcome.new_labels, "reason": skip},
            )
        return

    user_x, user_y = crops_of(train_digits)
    hold = crops_of(holdout_digits)
    mnist_x, mnist_y = mnist_train
    n_mnist, n_user = len(mnist_y), len(user_y)
    f = config.user_fraction
    epoch_size = config.epoch_size or min(60_000, max(1_000, math.ceil(n_user / f)))
    weights = np.concatenate(
        [np.full(n_mnist, (1.0 - f) / max(1, n_mnist)), np.full(n_user, f / n_user)]
    )
    if n_mnist == 0:
        weights[:] = 1.0 / n_user
    outcome.mnist_samples = round(epoch_size * config.epochs * (1 - f)) if n_mnist else 0

    from training.train import TrainConfig, save_result, train

    train_config = TrainConfig(
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        warmup=0.1,
        seed=config.seed,
        augment=config.augment,
        augment_config=FINE_TUNE_AUGMENT,
        model=ModelConfig.from_dict(body["model_config"]),
        device=config.device,
        threads=config.threads,
    )
    stage(
        f"fine-tuning {active.version}: {config.epochs} epochs of {epoch_size} samples, "
        f"{f:.0%} from {n_user} user digits"
    )
    # A small slice of MNIST test is enough to log progress; the gate uses all of it.
    result = train(
        train_config,
        np.concatenate([mnist_x, user_x]),
        np.concatenate([np.asarray(mnist_y, np.int64), user_y]),
        mnist_test[0][:1000],
        mnist_test[1][:1000],
        init_state=body["state_dict"],
        sample_weights=weights,
        epoch_size=epoch_size,
        progress=progress,
    )
    outcome.train_seconds = result.seconds

    lines_result = None
    if config.line_steps and pictures["train"]:
        assert images is not None
        stage(f"cutting {len(pictures['train'])} users' pictures into lines")
        user_lines, cut = picture_bands(pictures["train"], active_reader, images, progress=progress)
        outcome.line_data = cut.to_dict()
        if len(user_lines):
            stage(
                f"fine-tuning the line model {active_lines.version}: at most "
                f"{config.line_steps} steps, {f:.0%} from {len(user_lines)} bands of users' "
                "pictures"
            )
            lines_result = fine_tune_lines(
                config, lines_body, user_lines, mnist_train, progress=progress
            )
            outcome.line_seconds = lines_result.seconds
    candidate_lines = (
        LineReader.from_model(lines_result.model, device=config.device)
        if lines_result
        else active_lines
    )

    stage("evaluating the candidate and the active model")
    candidate_clf = DigitClassifier.from_model(result.model, device=config.device)
    candidate_reader = DigitReader.load(candidate_clf, lines=candidate_lines)
    outcome.active = score(active_clf, mnist_test, hold)
    outcome.candidate = score(candidate_clf, mnist_test, hold)
    if pictures["holdout"]:
        assert images is not None
        both = pictures_read_exactly(
            [active_reader, candidate_reader], pictures["holdout"], images, progress=progress
        )
        for scores, right in zip((outcome.active, outcome.candidate), both, strict=True):
            scores.pictures_right = right
            scores.pictures = len(right)
            scores.pictures_exact = float(right.mean()) if len(right) else None
    base_name, base_mnist = baseline_mnist(
        factory, active, outcome.active.mnist_test_accuracy, mnist_test, config.device
    )
    outcome.baseline = base_name
    outcome.baseline_mnist = base_mnist
    promote, reason = decide(
        outcome.active,
        outcome.candidate,
        gate=config.gate(),
        baseline_mnist=base_mnist,
    )
    keep_classifier = False
    if not promote and lines_result is not None and pictures["holdout"]:
        # The two parts learn from different labels: the line model's gain must not wait
        # for a classifier that failed the gate. Judge it with the active classifier.
        assert images is not None
        alone = Scores(
            outcome.active.mnist_test_accuracy,
            outcome.active.user_holdout_accuracy,
            outcome.active.user_holdout_samples,
            outcome.active.holdout_right,
        )
        (right,) = pictures_read_exactly(
            [DigitReader.load(active_clf, lines=candidate_lines)], pictures["holdout"], images
        )
        alone.pictures_right, alone.pictures = right, len(right)
        alone.pictures_exact = float(right.mean()) if len(right) else None
        ok, why = decide(outcome.active, alone, gate=config.gate(), baseline_mnist=base_mnist)
        if ok:
            promote, keep_classifier = True, True
            reason = f"{why} (the line model alone; with the fine-tuned classifier {reason})"
            outcome.candidate = alone
    outcome.reason = reason
    gained, lost = holdout_changes(outcome.active, outcome.candidate)
    outcome.holdout_gained, outcome.holdout_lost = gained, lost
    outcome.p_value = sign_test_p(gained, lost)
    outcome.pictures_gained, outcome.pictures_lost = picture_changes(
        outcome.active, outcome.candidate
    )

    version = f"ft-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-r{run_id}"
    path = (Path(models_dir) / f"{version}.pt").resolve()
    metrics = {
        "mnist_test_accuracy": outcome.candidate.mnist_test_accuracy,
        "user_holdout_accuracy": outcome.candidate.user_holdout_accuracy,
        "candidate": outcome.candidate.to_dict(),
        "active": outcome.active.to_dict(),
        "active_version": active.version,
        "baseline_version": base_name,
        "baseline_mnist_test_accuracy": round(base_mnist, 6),
        "holdout_gained": gained,
        "holdout_lost": lost,
        "p_value": round(outcome.p_value, 6),
        "pictures_gained": outcome.pictures_gained,
        "pictures_lost": outcome.pictures_lost,
        "decision": "promoted" if promote else "rejected",
        "reason": reason,
    }
    data = {
        "mnist_train": n_mnist,
        "user_train_digits": n_user,
        "user_holdout_digits": len(hold[1]),
        "new_labels": outcome.new_labels,
        "epoch_size": epoch_size,
        "user_fraction": f,
        "run_id": run_id,
        "user_pictures": len(pictures["train"]),
        "holdout_pictures": len(pictures["holdout"]),
        "line_data": outcome.line_data,
        "classifier": "kept from the parent" if keep_classifier else "fine-tuned",
    }
    carried = None  # the line model the candidate reads with, carried in its checkpoint
    if lines_result is not None:
        carried = line_payload(
            lines_result,
            version=f"{version}-lines",
            parent=lines_body.get("version"),
            data={**lines_body.get("data", {}), "user_bands": outcome.line_data.get("bands", 0)},
        )
    elif LINES_KEY in body:
        carried = body[LINES_KEY]
    outcome.line_model = str((carried or lines_body).get("version") or "shipped")
    stage(f"writing {path}")
    if keep_classifier:  # the parent's classifier, with the new line model
        kept = {k: v for k, v in body.items() if k != LINES_KEY}
        summary = {**(kept.get("summary") or {}), "data": data}
        sha = save_checkpoint(
            path,
            {
                **kept,
                "version": version,
                "parent_version": active.version,
                "metrics": metrics,
                "summary": summary,
                LINES_KEY: carried,
            },
        )
    else:
        sha = save_result(
            path,
            result,
            version=version,
            metrics=metrics,
            data=data,
            parent=active.version,
            lines=carried,
        )
    with db.session_scope(factory) as session:
        db.register_model_version(
            session,
            version=version,
            path=str(path),
            sha256=sha,
            parent_version=active.version,
            data_summary=data,
            metrics=metrics,
            notes=reason,
        )
        if promote:
            db.activate_model_version(session, version)
        else:
            db.reject_model_version(session, version, reason=reason)
        db.finish_training_run(
            session,
            run_id,
            status=RunStatus.SUCCEEDED,
            mnist_samples=outcome.mnist_samples,
            user_samples=n_user,
            metrics={
                **metrics,
                "new_labels": outcome.new_labels,
                "recovery": outcome.recovery,
                "train_seconds": round(result.seconds, 1),
            },
            model_version=version,
        )
    outcome.status = "promoted" if promote else "rejected"
    outcome.version = version
    log.info("retrain run %d: %s", run_id, reason)
