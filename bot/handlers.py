"""Thin async handlers: parse the update, hand blocking work to threads, reply.

Shared resources live in ``context.bot_data["digits"]`` (a ``BotResources``, built in
``post_init``). Nothing here blocks the event loop: reading runs in the vision pool,
database calls in ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import html
import logging
import math
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from telegram import (
    Document,
    ForceReply,
    InputFile,
    Message,
    ReplyParameters,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

import db
from bot import keyboards, texts
from bot.config import BotConfig
from serving import service
from serving.model_swap import ModelManager
from serving.ratelimit import RateLimiter
from serving.subprocesses import CommandRunner, Outcome
from serving.vision_pool import VisionPool

log = logging.getLogger(__name__)

MAX_DOWNLOAD = 20 * 1024 * 1024  # Telegram's getFile limit for bots
MAX_UPLOAD = 50 * 1024 * 1024
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".pdf"}
PENDING_FIX = "pending_fix"  # user_data key: the reading the user is correcting
CORRECTED_BY = "corrected_by"  # user_data key: {correction message id: reading id}
MAX_REMEMBERED = 50


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
    return context.bot_data["digits"]


async def _reply(message: Message, text: str, **kwargs: Any) -> Message:
    return await message.reply_text(
        text,
        parse_mode=ParseMode.HTML,
        do_quote=kwargs.pop("do_quote", False),
        **kwargs,
    )


def is_admin(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    user = update.effective_user
    return user is not None and user.id in res(context).config.admin_ids


# --- information commands ------------------------------------------------------------------


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await _reply(update.effective_message, texts.HELP)


async def privacy(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await _reply(update.effective_message, texts.PRIVACY)


async def stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None
    found = await asyncio.to_thread(service.stats, res(context).sessions, user.id)
    if not found.known or not found.readings:
        await _reply(message, texts.STATS_NONE)
        return
    await _reply(
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
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None
    await _reply(message, texts.FORGET_ASK, reply_markup=keyboards.forget_keyboard(user.id))


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await _reply(update.effective_message, texts.UNKNOWN_COMMAND)


# --- admin commands --------------------------------------------------------------------------


async def modelinfo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None
    if not is_admin(update, context):
        await _reply(message, texts.ADMIN_ONLY)
        return
    r = res(context)
    loaded = r.models.current
    active = await asyncio.to_thread(service.active_model, r.sessions)
    await _reply(
        message,
        texts.model_info(
            loaded.version,
            loaded.path,
            active[0] if active else None,
            active[1] if active else None,
        ),
    )


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


async def notify_admins(
    context: ContextTypes.DEFAULT_TYPE, text: str, also: int | None = None
) -> None:
    """Send ``text`` to every admin (and to chat ``also``); a failure to one is logged."""
    chats = set(res(context).config.admin_ids)
    if also is not None:
        chats.add(also)
    for chat_id in sorted(chats):
        try:
            await context.bot.send_message(chat_id, text, parse_mode=ParseMode.HTML)
        except TelegramError as exc:
            log.warning("could not notify admin %s: %s", chat_id, exc)


async def run_retrain(
    context: ContextTypes.DEFAULT_TYPE, *, requested_by: int | None, scheduled: bool
) -> Outcome | None:
    """Run ``digits retrain``, report the outcome, and hot-swap if a new model is active.

    The requester hears "started" or "already running" only once that is certain, so two
    quick /retrain taps cannot both be told "started".
    """
    r = res(context)

    async def started() -> None:
        if requested_by is not None:
            await context.bot.send_message(requested_by, texts.RETRAIN_STARTED)

    outcome = await r.retrain.run(on_start=started)
    if outcome is None:
        if requested_by is not None:
            await context.bot.send_message(requested_by, texts.RETRAIN_BUSY)
        return None
    summary = html.escape(outcome.describe())
    if outcome.summary and outcome.summary.get("status") == "locked":
        text = texts.RETRAIN_LOCKED
    elif outcome.ok:
        template = texts.RETRAIN_SCHEDULED if scheduled else texts.RETRAIN_DONE
        text = template.format(summary=summary)
    else:
        text = texts.RETRAIN_FAILED.format(code=outcome.returncode, summary=summary)
    if await r.models.refresh():
        text += "\n" + texts.MODEL_SWAPPED.format(version=html.escape(r.models.current.version))
    await notify_admins(context, text, also=requested_by)
    return outcome


async def retrain(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None
    if not is_admin(update, context):
        await _reply(message, texts.ADMIN_ONLY)
        return
    spawn(res(context), run_retrain(context, requested_by=message.chat_id, scheduled=False))


async def scheduled_retrain(context: ContextTypes.DEFAULT_TYPE) -> None:
    """JobQueue callback: the daily retraining (skipped while one is running)."""
    r = res(context)
    if r.retrain.running:
        log.info("scheduled retraining skipped: one is still running")
        return
    await run_retrain(context, requested_by=None, scheduled=True)


async def refresh_model(context: ContextTypes.DEFAULT_TYPE) -> None:
    """JobQueue callback: swap to a newly activated model (from any bot instance)."""
    await res(context).models.refresh()


def _zip_dir(source: Path, target: Path) -> int:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(source))
    return target.stat().st_size


async def export(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None
    if not is_admin(update, context):
        await _reply(message, texts.ADMIN_ONLY)
        return
    spawn(res(context), _export(context, message))


async def _export(context: ContextTypes.DEFAULT_TYPE, message: Message) -> None:
    r = res(context)
    workdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="digits-export-"))
    try:
        out = workdir / "dataset"
        outcome = await r.export.run(
            "--out",
            str(out),
            "--format",
            "npz",
            on_start=lambda: _reply(message, texts.EXPORT_STARTED),
        )
        if outcome is None:
            await _reply(message, texts.EXPORT_BUSY)
            return
        if not outcome.ok:
            await _reply(
                message,
                texts.EXPORT_FAILED.format(
                    code=outcome.returncode, summary=html.escape(outcome.describe())
                ),
            )
            return
        archive = workdir / "digits-dataset.zip"
        size = await asyncio.to_thread(_zip_dir, out, archive)
        if size > MAX_UPLOAD:
            kept = r.config.data_dir / "exports" / archive.name
            await asyncio.to_thread(kept.parent.mkdir, parents=True, exist_ok=True)
            await asyncio.to_thread(shutil.move, archive, kept)
            await _reply(
                message,
                texts.EXPORT_TOO_BIG.format(
                    size=math.ceil(size / 2**20), path=html.escape(str(kept))
                ),
            )
            return
        data = await asyncio.to_thread(archive.read_bytes)
        await message.reply_document(
            InputFile(data, filename=archive.name),
            caption=texts.EXPORT_CAPTION.format(size=math.ceil(size / 1024)),
            do_quote=False,
        )
    finally:
        await asyncio.to_thread(shutil.rmtree, workdir, True)


# --- photos and scans ------------------------------------------------------------------------


def _document_kind(document: Document) -> str | None:
    """None for an image or PDF we should read, else a short description for the user."""
    mime = (document.mime_type or "").lower()
    suffix = Path(document.file_name or "").suffix.lower()
    if mime.startswith("image/") or mime == "application/pdf" or suffix in IMAGE_EXTENSIONS:
        return None
    if suffix:
        return f"a {suffix.lstrip('.').upper()} file"
    return f"of type {mime}" if mime else "not an image"


async def image(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A photo, or an image/PDF sent as a file: read it and reply with the reading."""
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None
    r = res(context)
    if message.photo:
        media: Any = message.photo[-1]  # the largest size
    else:
        media = message.document
        assert media is not None
        kind = _document_kind(media)
        if kind is not None:
            await _reply(message, texts.NOT_AN_IMAGE.format(kind=html.escape(kind)))
            return
    limit = min(MAX_DOWNLOAD, r.config.max_upload_bytes)
    if media.file_size and media.file_size > limit:
        await _reply(message, texts.TOO_BIG.format(size=math.ceil(media.file_size / 2**20)))
        return
    wait = r.limiter.hit(user.id)
    if wait:
        await _reply(
            message,
            texts.RATE_LIMITED.format(limit=r.limiter.limit, wait=max(1, math.ceil(wait))),
        )
        return
    try:
        telegram_file = await media.get_file()
    except BadRequest as exc:
        if "too big" in str(exc).lower():
            await _reply(message, texts.TOO_BIG.format(size=">20"))
            return
        raise
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    data = bytes(await telegram_file.download_as_bytearray())
    if len(data) > limit:  # file_size is optional in the Bot API: check what came
        await _reply(message, texts.TOO_BIG.format(size=math.ceil(len(data) / 2**20)))
        return

    from vision.decode import ImageError

    loaded = r.models.current  # one model for the whole request, even across a swap
    t1 = loop.time()
    try:
        pages = await r.vision_pool.read(loaded, data, r.config.max_pdf_pages)
    except ImageError as exc:
        await _reply(message, html.escape(str(exc)))
        return

    t2 = loop.time()
    found = [p for p in pages if not p.reading.empty]
    ids: list[int] = []
    if found:
        ids = await asyncio.to_thread(
            service.record_pages,
            r.sessions,
            r.images,
            data=data,
            pages=found,
            telegram_id=user.id,
            chat_id=message.chat_id,
            message_id=message.message_id,
            file_unique_id=media.file_unique_id,
            model_version=loaded.version,
        )
    t3 = loop.time()
    reading_ids = iter(ids)
    for page in pages:
        multi = page.pages > 1
        if page.reading.empty:
            text = texts.NO_DIGITS_PAGE.format(page=page.page) if multi else texts.NO_DIGITS
            await _reply(message, text)
            continue
        reading_id = next(reading_ids)
        await message.reply_photo(
            InputFile(page.annotated_jpeg, filename=f"reading-{reading_id}.jpg"),
            caption=texts.caption(
                reading_id,
                page.reading.text,
                page.low_flags,
                page=page.page if multi else None,
                pages=page.pages if multi else None,
            ),
            parse_mode=ParseMode.HTML,
            reply_markup=keyboards.reading_keyboard(reading_id),
            do_quote=False,
        )
    log.debug(
        "photo from %s: download %.0f ms, read %.0f ms, store %.0f ms, reply %.0f ms",
        user.id,
        1000 * (t1 - t0),
        1000 * (t2 - t1),
        1000 * (t3 - t2),
        1000 * (loop.time() - t3),
    )


# --- answers: buttons and corrections ----------------------------------------------------------


async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    callback = keyboards.decode(query.data)
    if callback is None:
        await query.answer(texts.STALE_BUTTON)
        return
    if callback.action in {keyboards.FORGET_YES, keyboards.FORGET_NO}:
        await _forget_answer(update, context, callback)
        return
    r = res(context)
    if callback.action == keyboards.CONFIRM:
        try:
            await asyncio.to_thread(service.confirm, r.sessions, callback.target, user.id)
        except db.NotYourReading:
            await query.answer(texts.NOT_YOUR_READING, show_alert=True)
            return
        except db.ReadingNotFound:
            await query.answer(texts.READING_GONE, show_alert=True)
            return
        if (
            context.user_data is not None
            and context.user_data.get(PENDING_FIX, {}).get("reading_id") == callback.target
        ):
            context.user_data.pop(PENDING_FIX, None)
        await query.answer()
        await _remove_keyboard(query.message)
        if query.message is not None:
            await _reply_to(
                context, query.message.chat.id, query.message.message_id, texts.CONFIRMED
            )
        return
    # Fix: only the owner may; check before prompting so nobody types in vain.
    owner = await asyncio.to_thread(_owner, r.sessions, callback.target)
    if owner is None:
        await query.answer(texts.READING_GONE, show_alert=True)
        return
    if owner != user.id:
        await query.answer(texts.NOT_YOUR_READING, show_alert=True)
        return
    await query.answer()
    chat_id = query.message.chat.id if query.message else user.id
    prompt = await context.bot.send_message(
        chat_id,
        texts.FIX_PROMPT.format(tag=texts.READING_TAG.format(id=callback.target)),
        reply_markup=ForceReply(selective=True, input_field_placeholder=texts.FIX_PLACEHOLDER),
        reply_parameters=(
            ReplyParameters(query.message.message_id, allow_sending_without_reply=True)
            if query.message
            else None
        ),
    )
    if context.user_data is not None:
        context.user_data[PENDING_FIX] = {
            "reading_id": callback.target,
            "chat_id": chat_id,
            "message_id": query.message.message_id if query.message else None,
            "prompt_id": prompt.message_id,
        }


def _owner(factory: Any, reading_id: int) -> int | None:
    with factory() as session:
        reading = db.get_reading(session, reading_id)
        if reading is None:
            return None
        return reading.user.telegram_id


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


async def text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A text message: the correction for the pending reading, else a hint."""
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None and message.text is not None
    r = res(context)
    pending = (context.user_data or {}).get(PENDING_FIX)
    reading_id = _reading_from_reply(message, context.bot.id)
    if reading_id is None and update.edited_message is not None:
        # An edited correction corrects the same reading again (the latest wins).
        reading_id = (context.user_data or {}).get(CORRECTED_BY, {}).get(message.message_id)
        pending = None
    keyboard_at: tuple[int, int] | None = None
    if reading_id is None and pending:
        reading_id = pending["reading_id"]
    if pending and pending["reading_id"] == reading_id and pending.get("message_id"):
        keyboard_at = (pending["chat_id"], pending["message_id"])
    if reading_id is None:
        await _reply(message, texts.NOTHING_TO_CORRECT)
        return
    try:
        result = await asyncio.to_thread(
            service.correct, r.sessions, reading_id, user.id, message.text
        )
    except db.InvalidCorrection as exc:
        await _reply(message, texts.BAD_CORRECTION.format(reason=html.escape(str(exc))))
        return
    except db.NotYourReading:
        await _reply(message, texts.NOT_YOUR_READING)
        return
    except db.ReadingNotFound:
        await _reply(message, texts.READING_GONE)
        return
    if context.user_data is not None:
        if pending and pending["reading_id"] == reading_id:
            context.user_data.pop(PENDING_FIX, None)
        corrected_by = context.user_data.setdefault(CORRECTED_BY, {})
        corrected_by[message.message_id] = reading_id
        while len(corrected_by) > MAX_REMEMBERED:
            corrected_by.pop(next(iter(corrected_by)))
    if keyboard_at is not None:
        try:
            await context.bot.edit_message_reply_markup(
                keyboard_at[0], keyboard_at[1], reply_markup=None
            )
        except BadRequest as exc:
            log.debug("could not remove keyboard: %s", exc)
    await message.reply_text(
        texts.corrected(result.text, result.labelled, result.expected_digits, result.found_digits),
        do_quote=False,
    )


async def _forget_answer(
    update: Update, context: ContextTypes.DEFAULT_TYPE, callback: keyboards.Callback
) -> None:
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    if callback.target != user.id:
        await query.answer(texts.NOT_YOUR_READING, show_alert=True)
        return
    await query.answer()
    if callback.action == keyboards.FORGET_NO:
        done = texts.FORGET_CANCELLED
    else:
        r = res(context)
        result, files = await asyncio.to_thread(service.forget, r.sessions, r.images, user.id)
        context.user_data.pop(PENDING_FIX, None) if context.user_data is not None else None
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


# --- everything else ---------------------------------------------------------------------------


async def sticker(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await _reply(update.effective_message, texts.STICKER)


async def voice(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await _reply(update.effective_message, texts.VOICE)


async def other(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await _reply(update.effective_message, texts.OTHER_MESSAGE)


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
