"""Many writers at once: no errors reach the caller, nothing is lost or duplicated."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from benchmarks.db import bench
from benchmarks.pgserver import PostgresUnavailable, find_bindir, throwaway_postgres
from db import (
    Reading,
    User,
    correct_reading,
    get_or_create_user,
    get_reading,
    record_reading,
    session_scope,
)


def _run_threads(count: int, target: Callable[[int], None]) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def wrapped(i: int) -> None:
        try:
            barrier.wait()
            target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return errors


def test_a_new_user_arriving_on_many_connections_at_once(factory: sessionmaker[Session]) -> None:
    def create(_: int) -> None:
        with session_scope(factory) as session:
            get_or_create_user(session, 555)

    assert _run_threads(8, create) == []
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(User)) == 1


def test_parallel_writers_lose_nothing(factory: sessionmaker[Session], reading_kwargs) -> None:
    def write(i: int) -> None:
        for n in range(6):
            with session_scope(factory) as session:
                record_reading(
                    session, **reading_kwargs(telegram_id=100 + n % 3, message_id=i * 100 + n)
                )

    assert _run_threads(6, write) == []
    with factory() as session:
        message_ids = sorted(session.scalars(select(Reading.message_id)))
    assert message_ids == sorted(i * 100 + n for i in range(6) for n in range(6))


def test_concurrent_corrections_of_one_reading_stay_consistent(
    factory: sessionmaker[Session], reading_kwargs
) -> None:
    with session_scope(factory) as session:
        reading_id = record_reading(session, **reading_kwargs(text="1234")).id
    texts = ["1111", "2222", "333", "4444", "55555", "6666"]

    def correct(i: int) -> None:
        with session_scope(factory) as session:
            correct_reading(session, reading_id, 42, texts[i])

    assert _run_threads(len(texts), correct) == []
    with factory() as session:
        reading = get_reading(session, reading_id)
        assert reading is not None and reading.corrected_text in texts
        labels = [d.label for d in reading.digits]
        if len(reading.corrected_text or "") == 4:
            assert labels == [int(c) for c in reading.corrected_text or ""]
        else:
            assert labels == [None] * 4


def test_bench_smoke(db_url: str, tmp_path: Path) -> None:
    """The benchmark itself, briefly: 4 writers for a second, verified row by row."""
    args = argparse.Namespace(
        seconds=1.0, writers=4, mode="thread", users=3, no_images=False, seed=1
    )
    result = bench(db_url, args=args, backend="test", workdir=tmp_path)
    assert result.ok, result
    assert result.readings > 0 and result.transactions == result.readings + result.answers


def test_missing_postgres_binaries_give_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PostgresUnavailable, match=r"initdb, pg_ctl, postgres.*apt-get install"):
        find_bindir(tmp_path)
    with pytest.raises(PostgresUnavailable), throwaway_postgres(bindir=tmp_path):
        pass
