"""The blocking work behind the handlers: reading images and the database calls.

Everything here runs in worker threads (``asyncio.to_thread`` or the vision pool), never
on the event loop. Each database function is one transaction.
"""

from __future__ import annotations

import logging
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

import db

log = logging.getLogger(__name__)

# Formats that may have several pages; everything else is read as one image.
MULTI_PAGE = {"pdf", "tiff"}


@dataclass(frozen=True)
class Page:
    """One page read: what to store and what to show."""

    reading: Any  # vision.reader.Reading
    annotated_jpeg: bytes | None  # None when no digits were found
    page: int
    pages: int

    @property
    def low_flags(self) -> list[bool]:
        return [bool(d.low_confidence) for d in self.reading.digits]


def read_image(reader: Any, data: bytes, max_pages: int, annotated: bool = True) -> list[Page]:
    """Decode, read and annotate every page (CPU-bound; runs in the vision pool).

    Each page is decoded once (a PDF page rendered once, only when reached) and its
    picture let go once annotated; ``annotated=False`` skips drawing the annotated JPEG
    (the web page draws the boxes itself). Raises ``vision.decode.ImageError`` (a message
    fit for the user) for bad input.
    """
    from vision.annotate import annotate, encode_jpeg
    from vision.decode import decode_for_reading, sniff_format

    if len(data) > reader.max_bytes:  # the same refusal `decode` gives, before any work
        from vision.decode import FileTooLarge

        raise FileTooLarge(f"The file is too large (the limit is {reader.max_bytes / 1e6:g} MB).")

    def drawn(reading: Any, image: Any) -> bytes | None:
        return None if reading.empty or not annotated else encode_jpeg(annotate(image, reading))

    readings: list[tuple[Any, bytes | None]] = []
    if sniff_format(data) in MULTI_PAGE:
        for reading, image in reader.read_document(data, max_pages=max_pages):
            readings.append((reading, drawn(reading, image)))
    else:
        from vision.segment import MAX_SIDE

        # Decoded once, the way the reader would (large JPEGs at reduced size); the
        # reading's boxes and sizes stay in original-image pixels through `scale`.
        array, scale = decode_for_reading(
            data, max_side=MAX_SIDE, max_pixels=reader.max_pixels, max_bytes=reader.max_bytes
        )
        reading = reader.read(array, scale=scale)
        readings.append((reading, drawn(reading, array)))
    return [
        Page(reading, jpeg, index + 1, len(readings))
        for index, (reading, jpeg) in enumerate(readings)
    ]


def record_pages(
    factory: sessionmaker[Session],
    store: db.ImageStore,
    *,
    data: bytes,
    pages: list[Page],
    telegram_id: int,
    chat_id: int | None,
    message_id: int | None,
    file_unique_id: str | None,
    model_version: str,
    source: str = "bot",
) -> list[int]:
    """Store the original file, then one reading per page with digits; their ids.

    ``source`` ("bot" or "web") is recorded on a user created here.

    The image goes first and the rows are committed after: a crash in between leaves a
    file and no row, never a row pointing at nothing.
    """
    stored = store.put(data)
    ids: list[int] = []
    with factory() as session, session.begin():
        for page in pages:
            r = page.reading
            row = db.record_reading(
                session,
                telegram_id=telegram_id,
                chat_id=chat_id,
                message_id=message_id,
                file_unique_id=file_unique_id,
                image_sha256=stored.sha256,
                image_path=str(stored.path) if stored.path else None,
                width=int(r.width),
                height=int(r.height),
                model_version=model_version,
                text=r.text,
                digits=db.DigitRecord.from_digits(r.digits),
                elapsed_ms=float(r.elapsed_ms),
                source=source,
            )
            ids.append(row.id)
    return ids


def confirm(factory: sessionmaker[Session], reading_id: int, telegram_id: int) -> None:
    with factory() as session, session.begin():
        db.confirm_reading(session, reading_id, telegram_id)


def correct(
    factory: sessionmaker[Session], reading_id: int, telegram_id: int, text: str
) -> db.CorrectionResult:
    with factory() as session, session.begin():
        return db.correct_reading(session, reading_id, telegram_id, text)


def stats(factory: sessionmaker[Session], telegram_id: int) -> db.UserStats:
    with factory() as session:
        return db.user_stats(session, telegram_id)


def forget(
    factory: sessionmaker[Session], store: db.ImageStore, telegram_id: int
) -> tuple[db.ForgetResult, int]:
    """Delete the user's rows, commit, THEN their image files; (result, files deleted)."""
    with factory() as session, session.begin():
        result = db.forget_user(session, telegram_id)
    deleted: list[str] = []
    if result.unreferenced_images:
        with factory() as session:
            deleted = db.delete_unreferenced_images(session, store, result.unreferenced_images)
    return result, len(deleted)


def active_model(factory: sessionmaker[Session]) -> tuple[str, dict[str, Any]] | None:
    with factory() as session:
        active = db.active_model_version(session)
        return (active.version, dict(active.metrics or {})) if active is not None else None


def zip_folder(source: Path, target: Path) -> int:
    """Zip every file under `source` into `target`; the archive's size in bytes."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(source))
    return target.stat().st_size


def keep_file(path: Path, folder: Path) -> Path:
    """Move `path` into `folder` (made if missing); where it is now."""
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.move(path, folder / path.name))


def reading_owner(factory: sessionmaker[Session], reading_id: int) -> int | None:
    """The user id that sent the reading, None if there is no such reading."""
    with factory() as session:
        reading = db.get_reading(session, reading_id)
        return reading.user.telegram_id if reading is not None else None
