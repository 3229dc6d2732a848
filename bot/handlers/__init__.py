"""Thin async handlers, by topic: parse the update, hand blocking work to threads or the
vision pool, reply. Shared resources are a `BotResources` in ``bot_data`` (made in
``post_init``); the texts are in `bot.texts`."""

from bot.handlers.admin import (
    export,
    modelinfo,
    refresh_model,
    retrain,
    run_retrain,
    scheduled_retrain,
)
from bot.handlers.answers import button, text
from bot.handlers.common import RESOURCES, BotResources, res, spawn
from bot.handlers.info import (
    error,
    forget,
    other,
    privacy,
    start,
    stats,
    sticker,
    unknown_command,
    voice,
)
from bot.handlers.reading import image

__all__ = [
    "RESOURCES",
    "BotResources",
    "button",
    "error",
    "export",
    "forget",
    "image",
    "modelinfo",
    "other",
    "privacy",
    "refresh_model",
    "res",
    "retrain",
    "run_retrain",
    "scheduled_retrain",
    "spawn",
    "start",
    "stats",
    "sticker",
    "text",
    "unknown_command",
    "voice",
]
