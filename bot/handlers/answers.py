"""Answers to a reading: ✅ confirms, ✏️ asks for the number, the next text (or a reply
to the reading) corrects it; /forget's buttons."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from telegram import CallbackQuery, ForceReply, Message, ReplyParameters, Update, User
from telegram.error import BadRequest
from telegram.ext import ContextTypes

import db
from bot import keyboards, texts
from bot.handlers.common import CORRECTED_BY, PENDING_FIX, error_text, reply, res
from serving import service

log = logging.getLogger(__name__)

MAX_REMEMBERED = 50  # corrections per user whose edits still correct their reading


async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query, user = update.callback_query, update.effective_user
    if query is None or user is None:
        return
    callback = keyboards.decode(query.data)
    if callback is None:
        await query.answer(texts.STALE_BUTTON)
    elif callback.action in {keyboards.FORGET_YES, keyboards.FORGET_NO}:
        await _forget_answer(query, context, user, callback)
    elif callback.action == keyboards.CONFIRM:
        await _confirm(query, context, user, callback.target)
    else:
        await _ask_for_fix(query, context, user, callback.target)


async def _confirm(
    query: CallbackQuery, context: ContextTypes.DEFAULT_TYPE, user: User, reading_id: int
) -> None:
    try:
        await asyncio.to_thread(service.confirm, res(context).sessions, reading_id, user.id)
    except (db.NotYourReading, db.ReadingNotFound) as exc:
        await query.answer(error_text(exc), show_alert=True)
        return
    pending = (context.user_data or {}).get(PENDING_FIX, {})
    if context.user_data is not None and pending.get("reading_id") == reading_id:
        context.user_data.pop(PENDING_FIX, None)
    await query.answer()
    await _remove_keyboard(query.message)
    if query.message is not None:
        await _reply_to(context, query.message.chat.id, query.message.message_id, texts.CONFIRMED)


async def _ask_for_fix(
    query: CallbackQuery, context: ContextTypes.DEFAULT_TYPE, user: User, reading_id: int
) -> None:
    """Only the owner may fix: checked before prompting, so nobody types in vain."""
    owner = await asyncio.to_thread(service.reading_owner, res(context).sessions, reading_id)
    if owner != user.id:
        gone = owner is None
        await query.answer(texts.READING_GONE if gone else texts.NOT_YOUR_READING, show_alert=True)
        return
    await query.answer()
    message = query.message
    chat_id = message.chat.id if message else user.id
    prompt = await context.bot.send_message(
        chat_id,
        texts.FIX_PROMPT.format(tag=texts.READING_TAG.format(id=reading_id)),
        reply_markup=ForceReply(selective=True, input_field_placeholder=texts.FIX_PLACEHOLDER),
        reply_parameters=(
            ReplyParameters(message.message_id, allow_sending_without_reply=True)
            if message
            else None
        ),
    )
    if context.user_data is not None:
        context.user_data[PENDING_FIX] = {
            "reading_id": reading_id,
            "chat_id": chat_id,
            "message_id": message.message_id if message else None,
            "prompt_id": prompt.message_id,
        }


async def _remove_keyboard(message: Any) -> None:
    if message is None or not getattr(message, "reply_markup", None):
        return
    try:
        await message.edit_reply_markup(reply_markup=None)
    except BadRequest as exc:  # already removed, or the message is gone
        log.debug("could not remove keyboard: %s", exc)


async def _reply_to(
    context: ContextTypes.DEFAULT_TYPE, chat_id: int, message_id: int | None, text: str
) -> None:
    await context.bot.send_message(
        chat_id,
        text,
        reply_parameters=(
            ReplyParameters(message_id, allow_sending_without_reply=True) if message_id else None
        ),
    )


def _reading_from_reply(message: Message, bot_id: int) -> int | None:
    """The reading a reply refers to: our caption or prompt names it as ``reading #N``."""
    replied = message.reply_to_message
    if replied is None or replied.from_user is None or replied.from_user.id != bot_id:
        return None
    found = texts.READING_TAG_RE.search(replied.caption or replied.text or "")
    return int(found.group(1)) if found else None


def _target(
    update: Update, context: ContextTypes.DEFAULT_TYPE, message: Message
) -> tuple[int | None, dict[str, Any] | None]:
    """(reading id or None, the pending fix it answers or None)."""
    data = context.user_data or {}
    pending = data.get(PENDING_FIX)
    reading_id = _reading_from_reply(message, context.bot.id)
    if reading_id is None and update.edited_message is not None:
        # An edited correction corrects the same reading again (the latest wins).
        return data.get(CORRECTED_BY, {}).get(message.message_id), None
    if reading_id is None and pending:
        reading_id = pending["reading_id"]
    return reading_id, pending if pending and pending["reading_id"] == reading_id else None


async def text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A text message: the correction for the pending reading, else a hint."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None or message.text is None:
        return
    reading_id, pending = _target(update, context, message)
    if reading_id is None:
        await reply(message, texts.NOTHING_TO_CORRECT)
        return
    try:
        result = await asyncio.to_thread(
            service.correct, res(context).sessions, reading_id, user.id, message.text
        )
    except (db.InvalidCorrection, db.NotYourReading, db.ReadingNotFound) as exc:
        await reply(message, error_text(exc) or texts.ERROR)
        return
    _remember(context, message.message_id, reading_id, answered=pending is not None)
    if pending is not None and pending.get("message_id"):
        try:
            await context.bot.edit_message_reply_markup(
                pending["chat_id"], pending["message_id"], reply_markup=None
            )
        except BadRequest as exc:
            log.debug("could not remove keyboard: %s", exc)
    await message.reply_text(
        texts.corrected(result.text, result.labelled, result.expected_digits, result.found_digits),
        do_quote=False,
    )


def _remember(
    context: ContextTypes.DEFAULT_TYPE, message_id: int, reading_id: int, *, answered: bool
) -> None:
    """The pending fix is done; an edit of this message will correct the same reading."""
    if context.user_data is None:
        return
    if answered:
        context.user_data.pop(PENDING_FIX, None)
    corrected_by = context.user_data.setdefault(CORRECTED_BY, {})
    corrected_by[message_id] = reading_id
    while len(corrected_by) > MAX_REMEMBERED:
        corrected_by.pop(next(iter(corrected_by)))


async def _forget_answer(
    query: CallbackQuery,
    context: ContextTypes.DEFAULT_TYPE,
    user: User,
    callback: keyboards.Callback,
) -> None:
    if callback.target != user.id:
        await query.answer(texts.NOT_YOUR_READING, show_alert=True)
        return
    await query.answer()
    if callback.action == keyboards.FORGET_NO:
        done = texts.FORGET_CANCELLED
    else:
        r = res(context)
        result, files = await asyncio.to_thread(service.forget, r.sessions, r.images, user.id)
        if context.user_data is not None:
            context.user_data.pop(PENDING_FIX, None)
        done = (
            texts.FORGET_DONE.format(readings=result.readings_deleted, images=files)
            if result.found
            else texts.FORGET_NOTHING
        )
    if query.message is not None:
        try:
            await query.edit_message_text(done)
        except BadRequest:
            await context.bot.send_message(query.message.chat.id, done)
