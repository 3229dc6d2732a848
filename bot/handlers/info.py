"""Commands and messages that only inform: /start, /help, /privacy, /stats, /forget's
question, and what the bot says to stickers, voice and anything else."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from telegram import Update
from telegram.ext import ContextTypes

from bot import keyboards, texts
from bot.handlers.common import reply, res
from serving import service

log = logging.getLogger(__name__)

Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]


def _says(text: str) -> Handler:
    """A handler that answers with `text`, whatever the message."""

    async def handler(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.effective_message is not None:
            await reply(update.effective_message, text)

    return handler


start = _says(texts.HELP)
privacy = _says(texts.PRIVACY)
unknown_command = _says(texts.UNKNOWN_COMMAND)
sticker = _says(texts.STICKER)
voice = _says(texts.VOICE)
other = _says(texts.OTHER_MESSAGE)


async def stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    found = await asyncio.to_thread(service.stats, res(context).sessions, user.id)
    if not found.known or not found.readings:
        await reply(message, texts.STATS_NONE)
        return
    await reply(
        message,
        texts.stats(
            readings=found.readings,
            confirmed=found.confirmed,
            corrected=found.corrected + found.review,
            pending=found.pending,
            labelled=found.digits_labelled,
            correct=found.digits_correct,
        ),
    )


async def forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/forget asks first; the answer is a button (answers.button)."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    await reply(message, texts.FORGET_ASK, reply_markup=keyboards.forget_keyboard(user.id))


async def error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The one error handler: log the traceback, tell the person politely, carry on."""
    log.error("error while handling an update", exc_info=context.error)
    if not isinstance(update, Update):
        return
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(texts.ERROR[:200], show_alert=True)
        elif update.effective_chat is not None:
            await context.bot.send_message(update.effective_chat.id, texts.ERROR)
    except Exception:  # the error reply itself failed (network?): already logged above
        log.warning("could not tell the user about the error", exc_info=True)
