"""Content-addressed image files, and crashes between the image write and the commit."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db import (
    DigitRecord,
    ImageCorrupt,
    ImageNotFound,
    ImageStore,
    Reading,
    User,
    get_reading,
    make_engine,
    make_session_factory,
    record_reading,
    session_scope,
)
from db.images import guess_extension


def test_put_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    data = b"\xff\xd8\xff\xe0" + os.urandom(1000)
    sha = hashlib.sha256(data).hexdigest()
    stored = store.put(data)
    assert stored.sha256 == sha
    assert stored.path == tmp_path / sha[:2] / sha[2:4] / f"{sha}.jpg"
    assert stored.path.read_bytes() == data
    assert store.put(data) == stored
    assert store.read(sha) == data and store.open(sha) == stored.path
    assert list(store.iter_sha256()) == [sha]
    assert store.delete(sha) and not store.delete(sha)
    assert not store.exists(sha)
    with pytest.raises(ImageNotFound):
        store.read(sha)
    assert list(tmp_path.iterdir()) == []  # empty fan-out directories tidied


def test_extensions() -> None:
    assert guess_extension(b"\x89PNG\r\n\x1a\n....") == "png"
    assert guess_extension(b"%PDF-1.7") == "pdf"
    assert guess_extension(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "webp"
    assert guess_extension(b"II*\x00") == "tif"
    assert guess_extension(b"hello") == "bin"
    store = ImageStore(None)
    assert store.put(b"abc").path is None


def test_storage_off_returns_hash_only(tmp_path: Path) -> None:
    store = ImageStore(None)
    stored = store.put(b"\xff\xd8\xffdata")
    assert stored.sha256 == hashlib.sha256(b"\xff\xd8\xffdata").hexdigest()
    assert stored.path is None and not store.enabled
    with pytest.raises(ImageNotFound):
        store.read(stored.sha256)
    assert store.delete(stored.sha256) is False


def test_bad_input(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    with pytest.raises(ValueError, match="empty"):
        store.put(b"")
    with pytest.raises(TypeError):
        store.put("text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="SHA-256"):
        store.read("../../../etc/passwd")
    with pytest.raises(ValueError, match="SHA-256"):
        store.delete("*")
    with pytest.raises(ValueError, match="extension"):
        store.put(b"x", ext="../evil")


def test_corruption_is_detected(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    stored = store.put(b"\xff\xd8\xff" + b"a" * 100)
    assert stored.path is not None
    stored.path.write_bytes(b"\xff\xd8\xff" + b"b" * 100)
    with pytest.raises(ImageCorrupt):
        store.read(stored.sha256)


def test_concurrent_reader_never_sees_a_partial_file(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    blobs = [b"\xff\xd8\xff" + os.urandom(256 * 1024) for _ in range(8)]
    shas = [hashlib.sha256(b).hexdigest() for b in blobs]
    done = threading.Event()
    seen: list[str] = []
    problems: list[BaseException] = []

    def reader() -> None:
        while not done.is_set() or len(seen) < len(shas):
            for sha in shas:
                if sha in seen:
                    continue
                try:
                    store.read(sha)  # verifies the hash: a partial file would fail
                    seen.append(sha)
                except ImageNotFound:
                    pass
                except BaseException as exc:
                    problems.append(exc)
                    return

    thread = threading.Thread(target=reader)
    thread.start()
    for blob in blobs:
        store.put(blob)
    done.set()
    thread.join(timeout=30)
    assert problems == [] and sorted(seen) == sorted(shas)


DATA = b"\xff\xd8\xff" + bytes(range(256)) * 4096  # 1 MiB
DATA_SHA = hashlib.sha256(DATA).hexdigest()


def _child(url: str, root: str, mode: str) -> None:
    """Runs in a forked process that dies (SIGKILL) at the worst moment."""
    store = ImageStore(Path(root))
    if mode == "mid-write":
        real_write = os.write

        def dying_write(fd: int, chunk: bytes) -> int:
            real_write(fd, bytes(chunk[: len(chunk) // 2]))
            os.kill(os.getpid(), signal.SIGKILL)
            return 0

        os.write = dying_write  # type: ignore[assignment]
    stored = store.put(DATA)
    engine = make_engine(url)
    session = make_session_factory(engine)()
    record_reading(
        session,
        telegram_id=1,
        chat_id=1,
        message_id=1,
        file_unique_id="f",
        image_sha256=stored.sha256,
        image_path=str(stored.path),
        width=10,
        height=10,
        model_version="v1",
        text="7",
        digits=[DigitRecord(0, 0, 0, (0, 0, 5, 5), bytes(784), 7, 0.9)],
        elapsed_ms=1.0,
    )
    session.flush()  # the rows are in the open transaction, the write lock is held ...
    os.kill(os.getpid(), signal.SIGKILL)  # ... and the process dies before commit


def _crash(db_url: str, root: Path, mode: str) -> int | None:
    # fork, not a fresh interpreter: the child starts in milliseconds
    proc = multiprocessing.get_context("fork").Process(
        target=_child, args=(db_url, str(root), mode)
    )
    proc.start()
    proc.join(timeout=120)
    return proc.exitcode


def _counts(factory: sessionmaker[Session]) -> tuple[int, int]:
    with factory() as session:
        readings = session.scalar(select(func.count()).select_from(Reading)) or 0
        users = session.scalar(select(func.count()).select_from(User)) or 0
    return readings, users


def test_crash_after_image_write_before_commit(
    db_url: str, factory: sessionmaker[Session], tmp_path: Path, reading_kwargs
) -> None:
    root = tmp_path / "images"
    assert _crash(db_url, root, "before-commit") == -signal.SIGKILL
    sha = DATA_SHA
    assert _counts(factory) == (0, 0)  # no orphan row (not even the user)
    store = ImageStore(root)
    assert hashlib.sha256(store.read(sha)).hexdigest() == sha  # the file is whole
    assert not list(root.rglob("*.tmp"))
    # the database is fully usable after the crash (SQLite lock and WAL recovered)
    with session_scope(factory) as session:
        reading = record_reading(
            session, **reading_kwargs(telegram_id=1, image_sha256=sha, image_path="x")
        )
    with factory() as session:
        assert get_reading(session, reading.id) is not None


def test_crash_while_writing_the_image(
    db_url: str, factory: sessionmaker[Session], tmp_path: Path
) -> None:
    root = tmp_path / "images"
    assert _crash(db_url, root, "mid-write") == -signal.SIGKILL
    assert _counts(factory) == (0, 0)
    store = ImageStore(root)
    data, sha = DATA, DATA_SHA
    # half a file exists, but only as a hidden temporary file, never at the final path
    partial = list(root.rglob(".*.tmp"))
    assert len(partial) == 1 and 0 < partial[0].stat().st_size < len(data)
    assert not store.exists(sha) and list(store.iter_sha256()) == []
    with pytest.raises(ImageNotFound):
        store.read(sha)
    assert store.sweep_temp_files(older_than_s=3600) == 0  # too fresh to be abandoned
    assert store.sweep_temp_files(older_than_s=0) == 1
    assert store.put(data).sha256 == sha and store.read(sha) == data


def test_exception_inside_transaction_leaves_no_row(
    factory: sessionmaker[Session], tmp_path: Path, reading_kwargs
) -> None:
    store = ImageStore(tmp_path)
    stored = store.put(b"\xff\xd8\xffphoto")
    with pytest.raises(RuntimeError), session_scope(factory) as session:
        record_reading(
            session, **reading_kwargs(image_sha256=stored.sha256, image_path=str(stored.path))
        )
        raise RuntimeError("the reply to Telegram failed")
    assert _counts(factory) == (0, 0)
    assert store.read(stored.sha256) == b"\xff\xd8\xffphoto"


def test_gc_removes_what_killed_writers_left(
    db_url: str, factory: sessionmaker[Session], tmp_path: Path, reading_kwargs
) -> None:
    """A writer killed between the image and the commit, one killed mid-write, a retrain
    killed between its model file and the registry: the leftovers go, nothing else."""
    from db import collect_garbage, register_model_version

    root = tmp_path / "images"
    assert _crash(db_url, root, "mid-write") == -signal.SIGKILL  # a .tmp file
    assert _crash(db_url, root, "before-commit") == -signal.SIGKILL  # an orphan image
    store = ImageStore(root)
    kept = store.put(b"\xff\xd8\xffkept photo")
    with session_scope(factory) as session:
        record_reading(
            session, **reading_kwargs(image_sha256=kept.sha256, image_path=str(kept.path))
        )
    models = tmp_path / "models"
    models.mkdir()
    registered, orphan = models / "ft-20260101-000000-r1.pt", models / "ft-20260101-000001-r2.pt"
    registered.write_bytes(b"model")
    orphan.write_bytes(b"model killed before its commit")
    (models / ".ft-20260101-000002-r3.pt.abc123.tmp").write_bytes(b"half a model")
    (models / "mine.pt").write_bytes(b"a file someone put here")  # not retrain's: kept
    with session_scope(factory) as session:
        register_model_version(
            session,
            version="v1",
            path=str(registered),
            sha256=DATA_SHA,
            parent_version=None,
            data_summary={},
            metrics={},
        )
    # Everything is fresh: a live writer might be about to commit, so nothing goes.
    assert collect_garbage(factory, images=store, models_dir=models).total == 0
    report = collect_garbage(factory, images=store, models_dir=models, min_age_s=0)
    assert report.to_dict() == {
        "temp_images": 1,
        "orphan_images": 1,
        "orphan_models": 1,
        "temp_models": 1,
    }
    assert list(store.iter_sha256()) == [kept.sha256] and not list(root.rglob("*.tmp"))
    assert sorted(p.name for p in models.iterdir()) == ["ft-20260101-000000-r1.pt", "mine.pt"]
    assert collect_garbage(factory, images=store, models_dir=models, min_age_s=0).total == 0


def test_db_gc_command(db_url: str, tmp_path: Path, monkeypatch, capsys) -> None:
    import json

    from digits.cli import main

    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("DIGITS_DATA_DIR", str(tmp_path / "data"))
    assert _crash(db_url, tmp_path / "data" / "images", "before-commit") == -signal.SIGKILL
    (tmp_path / "data" / "models").mkdir(parents=True)
    (tmp_path / "data" / "models" / "ft-x.pt").write_bytes(b"unregistered")
    assert main(["db", "gc"]) == 0  # fresh leftovers stay (default: an hour old)
    assert json.loads(capsys.readouterr().out)["orphan_images"] == 0
    assert main(["db", "gc", "--min-age-s", "0"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "temp_images": 0,
        "orphan_images": 1,
        "orphan_models": 1,
        "temp_models": 0,
    }
