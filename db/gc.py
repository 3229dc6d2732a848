"""Leftovers of killed processes: temporary files, unregistered model files, images no
reading refers to. `digits db gc` and every `digits retrain` remove them.

Every write in this project is a temporary file renamed into place, then a commit, so a
kill -9 can leave (a) a hidden ``.tmp`` file, (b) a complete file the database never
learnt about: an image put before its reading was committed, or a retrain's
``ft-*.pt`` written before its version was registered, or (c) an image whose last
reading was deleted before the file was. Files younger than ``min_age_s`` are left
alone: a live writer may be between its rename and its commit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.engine import session_scope
from db.images import ImageStore
from db.models import ModelVersion, Reading

log = logging.getLogger(__name__)

# What retrain writes into the models folder (and the temp names save_checkpoint uses).
MODEL_PATTERN = "ft-*.pt"
MODEL_TEMP_PATTERN = ".ft-*.pt.*.tmp"
DEFAULT_MIN_AGE_S = 3600.0


@dataclass
class GcReport:
    temp_images: int = 0
    orphan_images: int = 0
    orphan_models: int = 0
    temp_models: int = 0

    @property
    def total(self) -> int:
        return self.temp_images + self.orphan_images + self.orphan_models + self.temp_models

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def _old_enough(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime <= cutoff
    except FileNotFoundError:
        return False


def _unlink(path: Path) -> bool:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
        return True
    return False


def collect_garbage(
    factory: sessionmaker[Session],
    *,
    images: ImageStore | None = None,
    models_dir: Path | None = None,
    min_age_s: float = DEFAULT_MIN_AGE_S,
    model_min_age_s: float | None = None,
) -> GcReport:
    """Remove the leftovers described above; returns what was removed.

    ``model_min_age_s`` (default: ``min_age_s``) may be 0 for a caller that holds the
    retrain lock, since then no other process can be writing a model.
    """
    report = GcReport()
    now = time.time()
    cutoff = now - min_age_s
    model_cutoff = now - (min_age_s if model_min_age_s is None else model_min_age_s)
    if images is not None and images.enabled:
        report.temp_images = images.sweep_temp_files(older_than_s=min_age_s)
        with session_scope(factory) as session:
            referenced = set(
                session.scalars(
                    select(Reading.image_sha256).where(Reading.image_sha256.is_not(None)).distinct()
                )
            )
        for sha in list(images.iter_sha256()):
            if sha in referenced:
                continue
            path = images.path(sha)
            if path is not None and _old_enough(path, cutoff) and images.delete(sha):
                report.orphan_images += 1
    if models_dir is not None and Path(models_dir).is_dir():
        folder = Path(models_dir)
        with session_scope(factory) as session:
            registered = {
                os.path.realpath(path) for path in session.scalars(select(ModelVersion.path))
            }
        for path in folder.glob(MODEL_PATTERN):
            if os.path.realpath(path) not in registered and _old_enough(path, model_cutoff):
                report.orphan_models += _unlink(path)
        for path in folder.glob(MODEL_TEMP_PATTERN):
            if _old_enough(path, model_cutoff):
                report.temp_models += _unlink(path)
    if report.total:
        log.info("removed leftovers of interrupted writers: %s", report.to_dict())
    return report
