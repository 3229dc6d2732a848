"""What every handler shares: the resources made at start-up, replies, and error texts."""

from __future__ import annotations

import asyncio
import html
import logging
from dataclasses import dataclass, field
from typing import Any

from telegram import Message, Update
from telegram.constants import ParseMode
from telegram.ext import ContextTypes

import db
from bot import texts
from bot.config import BotConfig
from serving.model_swap import ModelManager
from serving.ratelimit import RateLimiter
from serving.subprocesses import CommandRunner
from serving.vision_pool import VisionPool

log = logging.getLogger(__name__)

RESOURCES = "digits"  # bot_data key of the BotResources
PENDING_FIX = "pending_fix"  # user_data key: the reading the user is correcting
CORRECTED_BY = "corrected_by"  # user_data key: {correction message id: reading id}


@dataclass
class BotResources:
    """Everything the handlers share; created in post_init, closed in post_shutdown."""

    config: BotConfig
    engine: Any
    sessions: Any  # sessionmaker
    images: db.ImageStore
    models: ModelManager
    limiter: RateLimiter
    vision_pool: VisionPool
    retrain: CommandRunner
    export: CommandRunner
    background: set[asyncio.Task[Any]] = field(default_factory=set)


def res(context: ContextTypes.DEFAULT_TYPE) -> BotResources:
    return context.bot_data[RESOURCES]


async def reply(message: Message, text: str, **kwargs: Any) -> Message:
    return await message.reply_text(
        text, parse_mode=ParseMode.HTML, do_quote=kwargs.pop("do_quote", False), **kwargs
    )


def is_admin(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    user = update.effective_user
    return user is not None and user.id in res(context).config.admin_ids


def spawn(r: BotResources, coro: Any) -> asyncio.Task[Any]:
    """A background task that is kept referenced and whose errors are logged."""
    task = asyncio.create_task(coro)
    r.background.add(task)

    def done(t: asyncio.Task[Any]) -> None:
        r.background.discard(t)
        if not t.cancelled() and t.exception() is not None:
            log.error("background task failed", exc_info=t.exception())

    task.add_done_callback(done)
    return task


# Domain errors a person can act on, and what they are told (HTML).
ERROR_TEXTS: dict[type[Exception], str] = {
    db.NotYourReading: texts.NOT_YOUR_READING,
    db.ReadingNotFound: texts.READING_GONE,
}


def error_text(exc: Exception) -> str | None:
    """What to tell the person about `exc`, or None for an error that is ours."""
    from vision.decode import ImageError

    if isinstance(exc, db.InvalidCorrection):
        return texts.BAD_CORRECTION.format(reason=html.escape(str(exc)))
    if isinstance(exc, ImageError):  # its message is written for the person
        return html.escape(str(exc))
    for kind, text in ERROR_TEXTS.items():
        if isinstance(exc, kind):
            return text
    return None
