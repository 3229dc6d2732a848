"""What the bot and the web app do with every picture: read it off the event loop, then
store the file and one reading per page, an empty page too (so that its number can
still be typed in and teach the model)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import db
from serving import service
from serving.model_swap import LoadedModel
from serving.vision_pool import VisionPool


@dataclass(frozen=True)
class Sender:
    """Who sent the picture, and from where: the reading's owner and its origin."""

    user_id: int  # a Telegram user id, or a browser's key (negative)
    source: str = "bot"  # "bot" or "web"
    chat_id: int | None = None
    message_id: int | None = None
    file_unique_id: str | None = None


@dataclass(frozen=True)
class Recorded:
    """One page read and stored."""

    page: service.Page
    reading_id: int


async def read_and_record(
    pool: VisionPool,
    model: LoadedModel,
    sessions: Any,
    images: db.ImageStore,
    data: bytes,
    sender: Sender,
    *,
    max_pages: int,
    annotated: bool = True,
) -> list[Recorded]:
    """Read every page of `data` with `model` and store them; `vision.decode.ImageError`
    (a message fit for the person) for input that cannot be read."""
    pages = await pool.read(model, data, max_pages, annotated=annotated)
    ids = await asyncio.to_thread(
        service.record_pages,
        sessions,
        images,
        data=data,
        pages=pages,
        telegram_id=sender.user_id,
        chat_id=sender.chat_id,
        message_id=sender.message_id,
        file_unique_id=sender.file_unique_id,
        model_version=model.version,
        source=sender.source,
    )
    return [Recorded(page, reading_id) for page, reading_id in zip(pages, ids, strict=True)]
