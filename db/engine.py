"""Engines and sessions for the embedded SQLite file and for PostgreSQL."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from db.errors import InvalidDatabaseUrl

log = logging.getLogger(__name__)

SqliteBegin = Literal["IMMEDIATE", "DEFERRED", "EXCLUSIVE"]
SqliteSynchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]


_WRITE_LOCKS: dict[str, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def _forget_write_locks() -> None:
    # A forked child must not inherit a lock some parent thread was holding.
    global _WRITE_LOCKS_GUARD
    _WRITE_LOCKS_GUARD = threading.Lock()
    _WRITE_LOCKS.clear()


os.register_at_fork(after_in_child=_forget_write_locks)


def _write_lock(path: Path | None) -> threading.Lock | None:
    if path is None:
        return None
    key = os.path.abspath(path)
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(key, threading.Lock())


class QueuedWriterConnection(sqlite3.Connection):
    """A sqlite3 connection whose write transactions queue on an in-process lock.

    SQLite's busy handler polls with sleeps growing to 100 ms, so with many writer
    threads a waiting one can lose the race for seconds. Threads of one process queue
    here and are woken one at a time instead; other processes still wait through
    ``busy_timeout``. The lock is held from BEGIN to COMMIT/ROLLBACK/close.
    """

    write_lock: threading.Lock | None = None
    holds_write_lock: bool = False

    def acquire_write(self, timeout: float) -> None:
        if self.write_lock is None or self.holds_write_lock:
            return
        if not self.write_lock.acquire(timeout=timeout):
            raise sqlite3.OperationalError(
                f"database is locked: waited {timeout:g} s for another writer in this process"
            )
        self.holds_write_lock = True

    def release_write(self) -> None:
        if self.holds_write_lock and self.write_lock is not None:
            self.holds_write_lock = False
            self.write_lock.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.release_write()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.release_write()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.release_write()


def normalize_url(url: str | URL) -> URL:
    """Parse a database URL, pointing plain ``postgres(ql)://`` URLs at psycopg 3.

    Hosting providers hand out ``postgres://`` URLs; SQLAlchemy would otherwise look for
    psycopg2, which this project does not install.
    """
    if isinstance(url, str):
        url = url.strip()
        if not url:
            raise InvalidDatabaseUrl("the database URL is empty")
        if url.startswith("postgres://"):
            url = "postgresql://" + url.removeprefix("postgres://")
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in {"sqlite", "postgresql"}:
        raise InvalidDatabaseUrl(
            f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql"
        )
    return parsed


def sqlite_file(url: str | URL) -> Path | None:
    """The file behind a SQLite URL, or None for in-memory databases and other backends."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in {"", ":memory:"} or database.startswith("file:"):
        return None
    return Path(database)


def make_engine(
    url: str | URL,
    *,
    sqlite_busy_timeout_s: float = 60.0,
    sqlite_synchronous: SqliteSynchronous = "FULL",
    sqlite_begin: SqliteBegin = "IMMEDIATE",
    sqlite_foreign_keys: bool = True,
    **engine_kwargs: Any,
) -> Engine:
    """Create an engine; for SQLite also the file's directory and the per-connection pragmas.

    SQLite gets WAL (readers never block the writer), foreign keys (off by default in
    SQLite!), a busy timeout, and ``BEGIN IMMEDIATE`` transactions: a write transaction
    takes the write lock up front and waits for it, instead of failing with "database is
    locked" when it upgrades from reading to writing under concurrency. Writer threads of
    one process queue fairly for the write lock (``QueuedWriterConnection``).
    ``sqlite_foreign_keys=False`` is for migrations only (table rebuilds in batch mode).
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "postgresql":
        engine_kwargs.setdefault("pool_pre_ping", True)
        return create_engine(parsed, **engine_kwargs)

    path = sqlite_file(parsed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    connect_args = dict(engine_kwargs.pop("connect_args", {}))
    connect_args.setdefault("timeout", sqlite_busy_timeout_s)
    connect_args.setdefault("check_same_thread", False)
    connect_args.setdefault("factory", QueuedWriterConnection)
    engine = create_engine(parsed, connect_args=connect_args, **engine_kwargs)
    busy_ms = int(sqlite_busy_timeout_s * 1000)
    lock = _write_lock(path) if sqlite_begin != "DEFERRED" else None

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin.
        dbapi_connection.isolation_level = None
        if isinstance(dbapi_connection, QueuedWriterConnection):
            dbapi_connection.write_lock = lock
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            if path is not None:
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute(f"PRAGMA synchronous = {sqlite_synchronous}")
            cursor.execute(f"PRAGMA foreign_keys = {'ON' if sqlite_foreign_keys else 'OFF'}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        raw = connection.connection.dbapi_connection
        if isinstance(raw, QueuedWriterConnection):
            raw.acquire_write(sqlite_busy_timeout_s)
        try:
            connection.exec_driver_sql(f"BEGIN {sqlite_begin}")
        except BaseException:
            if isinstance(raw, QueuedWriterConnection):
                raw.release_write()
            raise

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (the bot replies after it)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit when the block ends normally, roll back on any exception."""
    with factory() as session, session.begin():
        yield session
