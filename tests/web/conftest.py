"""The web app under test: one app per database backend (SQLite, throwaway PostgreSQL).

An app loads the real model once, so each backend's app serves the whole session; every
test starts with a fresh browser (no cookies) and makes its own readings.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import db
from benchmarks.pgserver import PostgresUnavailable, throwaway_postgres
from web.app import create_app

sys.path.insert(0, str(Path(__file__).parent))

from webkit import Web, make_config


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    try:
        with throwaway_postgres() as server:
            yield server.create_database("digits_web")
    except PostgresUnavailable as exc:
        pytest.fail(f"the PostgreSQL web tests cannot run: {exc}", pytrace=False)


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def web(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    data = tmp_path_factory.mktemp(f"web-{request.param}")
    url = f"sqlite:///{data / 'digits.sqlite3'}"
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
    config = make_config(data, url)
    with TestClient(create_app(config)) as client:
        engine = db.make_engine(url)
        try:
            yield Web(client, config, url, db.make_session_factory(engine))
        finally:
            engine.dispose()


@pytest.fixture
def client(web: Web) -> TestClient:
    """A new browser: no cookies."""
    web.client.cookies.clear()
    return web.client
