"""Every db test runs against SQLite and against a throwaway PostgreSQL 15 server.

The schema always comes from ``alembic upgrade head``, once per session: into a SQLite
file that each test gets a copy of, and into one PostgreSQL database that is emptied
after each test (creating a database per test costs ~0.3 s). Migration tests get their
own empty databases.
"""

from __future__ import annotations

import itertools
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from benchmarks.pgserver import PostgresServer, PostgresUnavailable, throwaway_postgres
from db import Base, DigitRecord, make_engine, make_session_factory, upgrade

_names = itertools.count(1)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    try:
        with throwaway_postgres() as server:
            yield server
    except PostgresUnavailable as exc:
        # Fail, never skip: CI must run the PostgreSQL half of the suite.
        pytest.fail(f"the PostgreSQL db tests cannot run: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def pg_database(pg_server: PostgresServer) -> str:
    """One PostgreSQL database migrated to head; emptied after every test that used it."""
    url = pg_server.create_database("digits_test")
    upgrade(url)
    return url


def _empty_tables(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "digits.sqlite3"
    upgrade(f"sqlite:///{path}")
    return path


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database at head, on each backend."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "digits.sqlite3"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("pg_database")
    yield url
    _empty_tables(url)


@pytest.fixture
def empty_db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database with no tables at all, on each backend."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'sub' / 'empty.sqlite3'}"
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = f"empty_{next(_names)}"
    url = server.create_database(name)
    yield url
    server.drop_database(name)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def session(factory: sessionmaker[Session]) -> Iterator[Session]:
    with factory() as session:
        yield session


def _make_digits(predicted: str, *, seed: int = 0, confidence: float = 0.9) -> list[DigitRecord]:
    """Digit records reading ``predicted`` (e.g. "12 7"), one number per space."""
    rng = random.Random(seed)
    records = []
    position = 0
    for number, group in enumerate(predicted.split()):
        for ch in group:
            records.append(
                DigitRecord(
                    position=position,
                    line=0,
                    number=number,
                    box=(5 + 20 * position, 3, 16, 24),
                    crop=rng.randbytes(784),
                    predicted=int(ch),
                    confidence=confidence,
                )
            )
            position += 1
    return records


def _reading_kwargs(telegram_id: int = 42, text: str = "123", **over: object) -> dict[str, object]:
    """Arguments for record_reading with sensible defaults."""
    kwargs: dict[str, object] = {
        "telegram_id": telegram_id,
        "chat_id": telegram_id,
        "message_id": random.randrange(1, 10**9),
        "file_unique_id": "AgADxyz",
        "image_sha256": None,
        "image_path": None,
        "width": 640,
        "height": 480,
        "model_version": "v1",
        "text": text,
        "digits": _make_digits(text) if isinstance(text, str) and "digits" not in over else [],
        "elapsed_ms": 12.5,
    }
    kwargs.update(over)
    return kwargs


@pytest.fixture
def make_digits():  # type: ignore[no-untyped-def]
    """``make_digits("12 7")``: DigitRecords predicting those digits."""
    return _make_digits


@pytest.fixture
def reading_kwargs():  # type: ignore[no-untyped-def]
    """``reading_kwargs(telegram_id, text, **overrides)``: arguments for record_reading."""
    return _reading_kwargs
