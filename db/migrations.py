"""Alembic, driven from code: the bot and ``digits db upgrade`` migrate through here."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from alembic import command
from db.engine import make_engine, make_session_factory, normalize_url

log = logging.getLogger(__name__)

#: ``alembic/`` and ``alembic.ini`` sit at the repository root, beside this package.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCRIPT_LOCATION = PROJECT_ROOT / "alembic"
INI_PATH = PROJECT_ROOT / "alembic.ini"


# Alembic keeps its running context in module globals: one command at a time per process.
_ALEMBIC_LOCK = threading.RLock()


class MigrationError(RuntimeError):
    """The database schema cannot be brought to (or checked against) the expected state."""


def alembic_config(engine: Engine | None = None) -> Config:
    """An Alembic config that works from any working directory.

    With ``engine``, env.py runs on a connection from it instead of reading a URL.
    """
    if not SCRIPT_LOCATION.is_dir():
        raise MigrationError(
            f"migration scripts not found at {SCRIPT_LOCATION}; run from a source checkout"
        )
    config = Config(str(INI_PATH)) if INI_PATH.is_file() else Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["configure_logger"] = False
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def _migration_engine(url: str | URL) -> Engine:
    # Foreign keys off while tables are rebuilt on SQLite (a DROP TABLE would otherwise
    # cascade-delete child rows); checked again with foreign_key_check afterwards.
    return make_engine(url, sqlite_foreign_keys=False, poolclass=NullPool)


def head_revision() -> str:
    """The newest revision the migration scripts know."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise MigrationError("no migration scripts found")
    return head


def current_revision(url: str | URL) -> str | None:
    """The revision the database is at (None for an empty database)."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def is_current(url: str | URL) -> bool:
    """Whether the database is at the newest revision."""
    return current_revision(url) == head_revision()


def check_current(url: str | URL) -> None:
    """Raise MigrationError unless the database is at the newest revision."""
    current, head = current_revision(url), head_revision()
    if current != head:
        raise MigrationError(
            f"database is at revision {current or 'none (empty)'}, the code expects {head}:"
            " run `digits db upgrade`"
        )


def _foreign_key_check(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as connection:
        problems = connection.execute(text("PRAGMA foreign_key_check")).fetchall()
    if problems:
        raise MigrationError(f"foreign key violations after migration: {problems[:10]}")


def upgrade(url: str | URL, revision: str = "head") -> str | None:
    """Migrate the database up to ``revision``; safe to call at every start.

    Two processes starting at once are serialised (an advisory lock on PostgreSQL, the
    write lock on SQLite), so the second one finds the work done.
    """
    url = normalize_url(url)
    engine = _migration_engine(url)
    try:
        with _ALEMBIC_LOCK:
            before = _current(engine)
            command.upgrade(alembic_config(engine), revision)
            after = _current(engine)
        _foreign_key_check(engine)
    finally:
        engine.dispose()
    if before != after:
        log.info("database migrated from %s to %s", before or "empty", after)
    return after


def downgrade(url: str | URL, revision: str) -> str | None:
    """Migrate down to ``revision`` ("base" drops every table and all data in them)."""
    engine = _migration_engine(url)
    try:
        with _ALEMBIC_LOCK:
            command.downgrade(alembic_config(engine), revision)
            after = _current(engine)
        _foreign_key_check(engine)
    finally:
        engine.dispose()
    log.info("database downgraded to %s", after or "base")
    return after


def check_models(url: str | URL) -> None:
    """``alembic check``: raise if the ORM models and the migrations disagree.

    The database must be at head (the comparison is against its actual schema).
    """
    engine = _migration_engine(url)
    try:
        with _ALEMBIC_LOCK:
            command.check(alembic_config(engine))
    finally:
        engine.dispose()


def _current(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def open_database(url: str, *, migrate: bool = True) -> Iterator[sessionmaker[Session]]:
    """A session factory on `url`, migrated to head first; its engine is disposed at exit.

    What a short-lived command needs; a long-running process (the bot, the web app) keeps
    its engine for its lifetime instead.
    """
    if migrate:
        upgrade(url)
    engine = make_engine(url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()
