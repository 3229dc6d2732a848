"""Model versions and training runs: what the learning loop produced and how."""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.errors import (
    InvalidInput,
    InvalidTransition,
    ModelVersionExists,
    ModelVersionNotFound,
    TrainingRunNotFound,
)
from db.images import check_sha256
from db.models import ModelStatus, ModelVersion, RunStatus, TrainingRun
from db.readings import _now
from db.records import as_int, as_int32, check_text

log = logging.getLogger(__name__)


def _json_dict(value: Any, what: str, *, optional: bool = False) -> dict[str, Any] | None:
    """A dict that survives a JSON round trip unchanged in meaning (clear error otherwise)."""
    if value is None and optional:
        return None
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a dict, got {type(value).__name__}")
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{what} is not JSON-serialisable: {exc}") from None
    check_text(text, what)  # PostgreSQL's JSON refuses lone surrogates and NUL
    return json.loads(text)


def _version_name(version: Any) -> str:
    if not isinstance(version, str) or not version.strip() or len(version) > 64:
        shown = repr(version) if len(repr(version)) <= 40 else repr(version)[:37] + "..."
        raise InvalidInput(f"a model version must be a non-empty string of <= 64 chars: {shown}")
    return check_text(version, "model version")


def _text(value: Any, what: str, max_len: int | None = None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text, got {type(value).__name__}")
    if max_len is not None and len(value) > max_len:
        raise InvalidInput(f"{what} is longer than {max_len} characters")
    return check_text(value, what)


def get_model_version(session: Session, version: str) -> ModelVersion:
    found = session.scalar(
        select(ModelVersion).where(ModelVersion.version == _version_name(version))
    )
    if found is None:
        raise ModelVersionNotFound(f"no model version {version!r}")
    return found


def register_model_version(
    session: Session,
    *,
    version: str,
    path: str | Path,
    sha256: str,
    parent_version: str | None,
    data_summary: dict[str, Any],
    metrics: dict[str, Any],
    status: ModelStatus | str = ModelStatus.CANDIDATE,
    notes: str | None = None,
    now: datetime | None = None,
) -> ModelVersion:
    """Record a model file. ``status="active"`` registers and activates it in one go.

    ``data_summary`` must not identify users (counts, date ranges, internal ids at most).
    """
    now = _now(now)
    version = _version_name(version)
    try:
        wanted = ModelStatus(status)
    except ValueError:
        choices = ", ".join(s.value for s in ModelStatus)
        raise InvalidInput(f"model status must be one of {choices}, got {status!r}") from None
    try:
        sha = check_sha256(str(sha256).lower())
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    path_text = _text(os.fspath(path), "model path", 1024)
    if not path_text:
        raise InvalidInput("model path must not be empty")
    notes = _text(notes, "notes")
    summary = _json_dict(data_summary, "data_summary")
    metric_values = _json_dict(metrics, "metrics")
    if parent_version is not None:
        get_model_version(session, parent_version)
    if session.scalar(select(ModelVersion.id).where(ModelVersion.version == version)) is not None:
        raise ModelVersionExists(f"model version {version!r} is already registered")
    model = ModelVersion(
        version=version,
        path=path_text,
        sha256=sha,
        created_at=now,
        parent_version=parent_version,
        data_summary=summary,
        metrics=metric_values,
        status=ModelStatus.CANDIDATE if wanted is ModelStatus.ACTIVE else wanted,
        notes=notes,
    )
    try:
        with session.begin_nested():
            session.add(model)
    except IntegrityError as exc:  # registered concurrently by another process
        raise ModelVersionExists(f"model version {version!r} is already registered") from exc
    if wanted is ModelStatus.ACTIVE:
        activate_model_version(session, version, now=now)
    return model


def activate_model_version(
    session: Session, version: str, *, now: datetime | None = None
) -> ModelVersion:
    """Make ``version`` the one active model; the previous active one becomes retired.

    A candidate or a retired version (rollback) may be activated, a rejected one not.
    """
    now = _now(now)
    model = session.scalar(
        select(ModelVersion)
        .where(ModelVersion.version == _version_name(version))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if model is None:
        raise ModelVersionNotFound(f"no model version {version!r}")
    if model.status is ModelStatus.ACTIVE:
        return model
    if model.status is ModelStatus.REJECTED:
        raise InvalidTransition(f"model version {version!r} was rejected and cannot be activated")
    try:
        with session.begin_nested():
            for current in session.scalars(
                select(ModelVersion)
                .where(ModelVersion.status == ModelStatus.ACTIVE)
                .with_for_update()
                .execution_options(populate_existing=True)
            ):
                current.status = ModelStatus.RETIRED
            session.flush()  # demote first: the one-active index is checked per row
            model.status = ModelStatus.ACTIVE
            model.activated_at = now
    except IntegrityError as exc:
        raise InvalidTransition(
            f"another model version was activated concurrently; {version!r} was not"
        ) from exc
    log.info("model version %s is now active", version)
    return model


def reject_model_version(
    session: Session, version: str, *, reason: str | None = None
) -> ModelVersion:
    """Mark a candidate (or retired) version as rejected, e.g. it failed the promotion gate."""
    model = get_model_version(session, version)
    if model.status is ModelStatus.ACTIVE:
        raise InvalidTransition(
            f"model version {version!r} is active: activate another one before rejecting it"
        )
    reason = _text(reason, "reason")
    model.status = ModelStatus.REJECTED
    if reason:
        model.notes = reason
    session.flush()
    return model


def retire_model_version(session: Session, version: str) -> ModelVersion:
    """Take a version out of service without judging it (it may be activated again)."""
    model = get_model_version(session, version)
    if model.status is ModelStatus.REJECTED:
        raise InvalidTransition(f"model version {version!r} is rejected, not retirable")
    model.status = ModelStatus.RETIRED
    session.flush()
    return model


def active_model_version(session: Session) -> ModelVersion | None:
    return session.scalar(select(ModelVersion).where(ModelVersion.status == ModelStatus.ACTIVE))


def list_model_versions(session: Session) -> list[ModelVersion]:
    """All versions, oldest first."""
    return list(
        session.scalars(select(ModelVersion).order_by(ModelVersion.created_at, ModelVersion.id))
    )


def start_training_run(
    session: Session, params: dict[str, Any], *, now: datetime | None = None
) -> TrainingRun:
    run = TrainingRun(
        started_at=_now(now), status=RunStatus.RUNNING, params=_json_dict(params, "params")
    )
    session.add(run)
    session.flush()
    return run


def finish_training_run(
    session: Session,
    run_id: int,
    *,
    status: RunStatus | str,
    mnist_samples: int | None,
    user_samples: int | None,
    metrics: dict[str, Any] | None,
    error: str | None = None,
    model_version: str | None = None,
    now: datetime | None = None,
) -> TrainingRun:
    """Close a running run with its outcome (succeeded, failed or skipped)."""
    now = _now(now)
    try:
        final = RunStatus(status)
    except ValueError:
        choices = ", ".join(s.value for s in RunStatus if s is not RunStatus.RUNNING)
        raise InvalidInput(f"run status must be one of {choices}, got {status!r}") from None
    if final is RunStatus.RUNNING:
        raise InvalidInput("finish_training_run needs a final status, not 'running'")
    counts = []
    for name, value in (("mnist_samples", mnist_samples), ("user_samples", user_samples)):
        count = None if value is None else as_int32(value, name)
        if count is not None and count < 0:
            raise InvalidInput(f"{name} must be >= 0, got {count}")
        counts.append(count)
    metric_values = _json_dict(metrics, "metrics", optional=True)
    error = _text(error, "error")
    if model_version is not None:
        get_model_version(session, model_version)
    run = session.get(TrainingRun, as_int(run_id, "run_id"), with_for_update=True)
    if run is None:
        raise TrainingRunNotFound(f"no training run {run_id}")
    if run.status is not RunStatus.RUNNING:
        raise InvalidTransition(f"training run {run_id} already finished ({run.status})")
    run.status = final
    run.finished_at = now
    run.mnist_samples, run.user_samples = counts
    run.metrics = metric_values
    run.error = error
    run.model_version = model_version
    session.flush()
    return run


def list_training_runs(session: Session, *, limit: int = 50) -> list[TrainingRun]:
    """The newest runs first."""
    return list(
        session.scalars(
            select(TrainingRun)
            .order_by(TrainingRun.started_at.desc(), TrainingRun.id.desc())
            .limit(limit)
        )
    )


def running_training_runs(session: Session) -> list[int]:
    """Ids of the runs still marked running (left so by a dead process, if none runs now)."""
    return list(
        session.scalars(select(TrainingRun.id).where(TrainingRun.status == RunStatus.RUNNING))
    )


def last_succeeded_run_start(session: Session) -> datetime | None:
    """When the last run that trained a model began (new labels are counted from there)."""
    return session.scalar(
        select(TrainingRun.started_at)
        .where(TrainingRun.status == RunStatus.SUCCEEDED)
        .order_by(TrainingRun.started_at.desc())
        .limit(1)
    )
