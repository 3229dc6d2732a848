"""Alembic environment: runs migrations on one connection, inside one transaction."""

from __future__ import annotations

from logging.config import fileConfig

from sqlalchemy import Connection, Engine, text

from alembic import context
from db.engine import make_engine
from db.models import Base

config = context.config
target_metadata = Base.metadata

# A lock id shared by every process migrating the same PostgreSQL database.
_PG_MIGRATION_LOCK = 0x6469676974730001


def _url() -> str:
    """The database URL when alembic runs from the command line (`alembic upgrade head`)."""
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if url:
        return url
    from digits.settings import Settings

    return Settings.from_env().db_url


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        # make_engine's SQLite connections run real transactions (BEGIN IMMEDIATE), so
        # the DDL is transactional there too: a failed migration leaves nothing behind.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_MIGRATION_LOCK}
            )
        context.run_migrations()


def run_migrations_online() -> None:
    engine: Engine | None = config.attributes.get("engine")
    if engine is not None:
        with engine.connect() as connection:
            _run(connection)
        return
    if config.config_file_name and config.attributes.get("configure_logger", True):
        fileConfig(config.config_file_name)
    from sqlalchemy.pool import NullPool

    engine = make_engine(_url(), sqlite_foreign_keys=False, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported: run against a database")
run_migrations_online()
