"""Fixtures: a fake Telegram server, and the real bot application running against it."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

import db
from bot.app import build_application, running
from digits.commands.bot import bot_config
from digits.settings import Settings

sys.path.insert(0, str(Path(__file__).parent))

from botkit import ADMIN, FAKE_DIGITS

from benchmarks import images
from benchmarks.fake_telegram import FakeTelegram
from tests.datadirs import mnist_dir

images.use_mnist(mnist_dir())


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path, fake: FakeTelegram) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        telegram_token=fake.token,
        api_base_url=fake.base_url,
        file_base_url=fake.base_file_url,
        admin_ids=frozenset({ADMIN.id}),
        mnist_dir=mnist_dir(),
        retrain_enabled=False,
        model_check_interval_s=0,
        # Threads: a bot up in milliseconds (the processes have their own test).
        vision_processes=False,
    )


BotFactory = Callable[..., Any]


@pytest.fixture
async def start_bot() -> AsyncIterator[BotFactory]:
    """``await start_bot(settings, **build_kwargs)`` runs the bot until the test ends."""
    stack: list[Any] = []

    async def start(settings: Settings, **kwargs: Any) -> Any:
        app = build_application(bot_config(settings), **kwargs)
        context = running(app, poll_timeout=1)
        await context.__aenter__()
        stack.append(context)
        return app

    yield start
    while stack:
        await stack.pop().__aexit__(None, None, None)


@pytest.fixture
async def bot(settings: Settings, start_bot: BotFactory) -> Any:
    """The bot as ``digits bot`` builds it: the real ``digits retrain``/``digits export``."""
    return await start_bot(settings)


@pytest.fixture
async def bot_with_double(settings: Settings, start_bot: BotFactory) -> Any:
    """The bot running a test double for retrain/export whose duration and outcome the
    test controls (a real retraining takes minutes)."""
    return await start_bot(
        settings, retrain_argv=(*FAKE_DIGITS, "retrain"), export_argv=(*FAKE_DIGITS, "export")
    )


@pytest.fixture
def sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = db.make_engine(settings.db_url)
    try:
        yield db.make_session_factory(engine)
    finally:
        engine.dispose()
