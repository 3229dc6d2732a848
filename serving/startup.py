"""What the bot and the web app open at start-up, the same way: the database, migrated
first, and the model, loaded once and kept current by `ModelManager`."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import db
from serving.model_swap import ModelManager, load_reader
from serving.vision_pool import limit_threads


@dataclass(frozen=True)
class Opened:
    engine: Engine
    sessions: sessionmaker[Session]
    models: ModelManager


async def open_database_and_model(
    db_url: str, *, model_path: Path | None, data_dir: Path, torch_threads: int
) -> Opened:
    """Migrate, open the database and load the active model, off the event loop."""
    await asyncio.to_thread(db.upgrade, db_url)
    engine = await asyncio.to_thread(db.make_engine, db_url)
    sessions = db.make_session_factory(engine)
    models = ModelManager(
        sessions,
        default_path=model_path,
        data_dir=data_dir,
        loader=functools.partial(load_reader, threads=torch_threads),
    )
    await asyncio.to_thread(limit_threads, torch_threads)
    await models.refresh()
    return Opened(engine, sessions, models)
