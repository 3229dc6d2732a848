"""The reader the bot reads with, and its hot swap when another model is activated.

The active model is whatever the database's model-versions table marks active (the
shipped default when none is). ``ModelManager.refresh`` compares that with the loaded
version and, when they differ, loads the new model off the event loop and replaces one
reference. A request takes ``manager.current`` once and reads with it to the end, so a
request in flight finishes on the model it started with and none is dropped.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

import db

log = logging.getLogger(__name__)

# Do not retry a model file that failed to load more often than this.
RETRY_FAILED_S = 300.0


@dataclass(frozen=True)
class LoadedModel:
    """A reader and the version it reads with, swapped together as one reference."""

    reader: Any  # vision.DigitReader
    version: str
    path: str
    from_db: bool
    file: Path | None = None  # what to load elsewhere (worker processes); None: shipped
    sha256: str = ""

    @property
    def key(self) -> str:
        """Identifies the weights (worker processes cache readers by it)."""
        return f"{self.version}:{self.sha256}"


@functools.cache
def shipped_segmenter(threads: int = 1) -> Any:
    """The fixed model that scores shapes while cutting (vision.DigitClassifier).

    Every classifier the bot activates reads with the same segmenter, so one copy per
    process serves them all (classify is thread-safe). `threads`: PyTorch threads per
    call (DIGITS_TORCH_THREADS).
    """
    from vision.classifier import SEGMENTER_MODEL_PATH, DigitClassifier

    return DigitClassifier.load(SEGMENTER_MODEL_PATH, threads=threads)


@functools.cache
def shipped_lines(threads: int = 1) -> Any:
    """The shipped line model that decides which shapes are digits (vision.LineReader).

    One copy per process serves every reader whose classifier carries no line model of
    its own (the learning loop stores the one it fine-tuned in the classifier's checkpoint).
    """
    from vision.line_reader import LineReader

    return LineReader.load(threads=threads)


def load_reader(path: Path | None, threads: int = 1) -> Any:
    """A reader of the checkpoint at `path` (None: shipped) with the shared segmenter, and
    the line model the checkpoint carries or else the shared shipped one."""
    from vision.classifier import DigitClassifier
    from vision.line_reader import LineReader
    from vision.reader import DigitReader

    classifier = DigitClassifier.load(path, threads=threads)
    own = classifier.lines_path
    lines = LineReader.load(own, threads=threads) if own else shipped_lines(threads)
    return DigitReader.load(model=classifier, segmenter=shipped_segmenter(threads), lines=lines)


def _reader_sha(reader: Any) -> str:
    return str(getattr(getattr(reader, "classifier", None), "sha256", "") or "")


def _sha256(model: LoadedModel) -> str | None:
    return model.sha256 or _reader_sha(model.reader) or None


class ModelManager:
    """Holds the current reader; ``refresh`` swaps in the database's active model."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        default_path: Path | None = None,
        data_dir: Path | None = None,
        loader: Callable[[Path | None], Any] = load_reader,
    ) -> None:
        self._session_factory = session_factory
        self._default_path = default_path
        self._data_dir = data_dir
        self._loader = loader
        self._current: LoadedModel | None = None
        self._lock = asyncio.Lock()
        self._failed: dict[str, float] = {}
        self.swaps = 0

    @property
    def current(self) -> LoadedModel:
        """The model to read with now (take it once per request)."""
        if self._current is None:
            raise RuntimeError("no model loaded yet: call ModelManager.refresh() first")
        return self._current

    def _resolve(self, raw: str) -> Path:
        path = Path(raw)
        if path.is_absolute() or path.exists() or self._data_dir is None:
            return path
        for base in (self._data_dir, self._data_dir / "models"):
            if (base / path).exists():
                return base / path
        return path

    def _active(self) -> tuple[str, str, str] | None:
        with self._session_factory() as session:
            active = db.active_model_version(session)
            if active is None:
                return None
            return (active.version, active.path, active.sha256)

    def _load(self, wanted: tuple[str, str, str] | None) -> LoadedModel:
        if wanted is None:
            reader = self._loader(self._default_path)
            version = getattr(getattr(reader, "classifier", None), "version", None)
            path = str(self._default_path or "shipped default")
            return LoadedModel(
                reader,
                str(version or "default"),
                path,
                from_db=False,
                file=self._default_path,
                sha256=_reader_sha(reader),
            )
        version, raw, _sha = wanted
        path = self._resolve(raw)
        reader = self._loader(path)
        return LoadedModel(
            reader, version, str(path), from_db=True, file=path, sha256=_reader_sha(reader)
        )

    async def refresh(self) -> bool:
        """Load the active model if it is not the loaded one; True when it swapped.

        A model that fails to load is logged and the current one is kept (a bad
        checkpoint must not take the bot down); it is retried after a while.
        """
        async with self._lock:
            wanted = await asyncio.to_thread(self._active)
            current = self._current
            if current is not None:
                if wanted is None and not current.from_db:
                    return False
                if wanted is not None and current.from_db and wanted[0] == current.version:
                    return False
            if current is not None and wanted is not None and wanted[2] == _sha256(current):
                # The same weights registered under a version name (e.g. the shipped model
                # when the registry is bootstrapped): adopt the name, nothing to load.
                self._current = LoadedModel(
                    current.reader, wanted[0], current.path, True, current.file, current.sha256
                )
                log.info(
                    "model %s is the loaded one; now recorded as %s", current.version, wanted[0]
                )
                return False
            key = wanted[0] if wanted else ""
            failed_at = self._failed.get(key)
            if current is not None and failed_at and time.monotonic() - failed_at < RETRY_FAILED_S:
                return False
            try:
                loaded = await asyncio.to_thread(self._load, wanted)
            except Exception:
                if current is None and wanted is not None:
                    log.exception("active model %s failed to load; using the default", key)
                    self._failed[key] = time.monotonic()
                    loaded = await asyncio.to_thread(self._load, None)
                elif current is None:
                    raise
                else:
                    log.exception("model %s failed to load; keeping %s", key, current.version)
                    self._failed[key] = time.monotonic()
                    return False
            self._failed.pop(key, None)
            self._current = loaded  # the atomic swap: one reference assignment
            if current is not None:
                self.swaps += 1
            log.info(
                "reading with model %s (%s)%s",
                loaded.version,
                loaded.path,
                f", was {current.version}" if current else "",
            )
            return current is not None
