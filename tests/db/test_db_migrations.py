"""The schema comes from Alembic alone, round-trips, and matches the ORM models."""

from __future__ import annotations

import multiprocessing
import re
import threading
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

import db
from db import MigrationError, make_engine
from db.engine import normalize_url
from digits.cli import main

TABLES = {"users", "readings", "digits", "model_versions", "training_runs"}
REPO = Path(__file__).resolve().parents[2]


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_round_trip_and_alembic_check(empty_db_url: str) -> None:
    assert db.current_revision(empty_db_url) is None
    with pytest.raises(MigrationError, match="digits db upgrade"):
        db.check_current(empty_db_url)

    assert db.upgrade(empty_db_url) == db.head_revision()
    assert _tables(empty_db_url) == TABLES
    db.check_models(empty_db_url)  # alembic check: models and migrations agree
    db.check_current(empty_db_url)

    assert db.downgrade(empty_db_url, "base") is None
    assert _tables(empty_db_url) == set()

    db.upgrade(empty_db_url)
    assert _tables(empty_db_url) == TABLES
    assert db.is_current(empty_db_url)
    db.check_models(empty_db_url)
    assert db.upgrade(empty_db_url) == db.head_revision()  # idempotent at every start


def test_naming_convention_names_constraints(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        inspector = inspect(engine)
        fks = {fk["name"] for fk in inspector.get_foreign_keys("digits")}
        uniques = {u["name"] for u in inspector.get_unique_constraints("users")}
        indexes = {i["name"] for i in inspector.get_indexes("model_versions")}
        pk = inspector.get_pk_constraint("readings")["name"]
    finally:
        engine.dispose()
    assert fks == {"fk_digits_reading_id_readings"}
    assert uniques == {"uq_users_telegram_id"}
    assert "uq_model_versions_one_active" in indexes
    if engine.dialect.name == "postgresql":  # SQLite does not report primary key names
        assert pk == "pk_readings"


def test_two_processes_upgrading_at_once(empty_db_url: str) -> None:
    """The bot and the learning loop may both migrate at start: neither may fail."""
    ctx = multiprocessing.get_context("fork")  # fork: no second interpreter start-up
    procs = [ctx.Process(target=db.upgrade, args=(empty_db_url,)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert db.is_current(empty_db_url)


def test_threads_upgrading_at_once(empty_db_url: str) -> None:
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            db.upgrade(empty_db_url)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert db.is_current(empty_db_url)


def test_sqlite_engine_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "x.sqlite3"
    engine = make_engine(f"sqlite:///{path}", sqlite_busy_timeout_s=7)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 7000
    finally:
        engine.dispose()
    assert path.parent.is_dir()


def test_url_normalisation() -> None:
    assert normalize_url("postgres://u:p@h/d").drivername == "postgresql+psycopg"
    assert normalize_url("postgresql://u@h/d").drivername == "postgresql+psycopg"
    with pytest.raises(ValueError, match="unsupported database"):
        normalize_url("mysql://u@h/d")
    with pytest.raises(ValueError, match="empty"):
        normalize_url("  ")


def test_cli_upgrade_current_check(
    empty_db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_db_url)
    assert main(["db", "current"]) == 1
    assert "behind" in capsys.readouterr().out
    assert main(["db", "upgrade"]) == 0
    assert main(["db", "current"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert main(["db", "check"]) == 0
    assert main(["db", "downgrade", "base"]) == 2  # refuses without --yes-delete-data
    assert db.is_current(empty_db_url)
    assert main(["db", "downgrade", "base", "--yes-delete-data"]) == 0
    assert db.current_revision(empty_db_url) is None


def test_cli_default_is_sqlite_in_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DIGITS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # alembic must be found from any working directory
    assert main(["db", "upgrade"]) == 0
    assert (tmp_path / "data" / "digits.sqlite3").is_file()
    capsys.readouterr()
    assert main(["db", "url"]) == 0
    assert "digits.sqlite3" in capsys.readouterr().out


def test_cli_reports_unreachable_database(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    assert main(["db", "upgrade"]) == 1
    assert "digits db upgrade:" in capsys.readouterr().err


def test_no_create_all_in_application_code() -> None:
    """Alembic is the only source of schema: no create_all outside tests."""
    offenders = []
    for package in ("db", "digits", "bot", "vision", "training", "alembic"):
        for path in (REPO / package).rglob("*.py"):
            if re.search(r"\.create_all\(", path.read_text(errors="replace")):
                offenders.append(str(path.relative_to(REPO)))
    assert offenders == []
