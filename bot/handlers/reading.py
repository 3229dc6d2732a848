"""A photo, or an image or PDF sent as a file: check it, read it, reply per page."""

from __future__ import annotations

import html
import logging
import math
from pathlib import Path
from typing import Any

from telegram import Document, InputFile, Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from bot import keyboards, texts
from bot.handlers.common import BotResources, error_text, reply, res
from serving.intake import Recorded, Sender, read_and_record

log = logging.getLogger(__name__)

MAX_DOWNLOAD = 20 * 1024 * 1024  # Telegram's getFile limit for bots
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".pdf"}


def document_kind(document: Document) -> str | None:
    """None for an image or PDF we should read, else a short description for the user."""
    mime = (document.mime_type or "").lower()
    suffix = Path(document.file_name or "").suffix.lower()
    if mime.startswith("image/") or mime == "application/pdf" or suffix in IMAGE_EXTENSIONS:
        return None
    if suffix:
        return f"a {suffix.lstrip('.').upper()} file"
    return f"of type {mime}" if mime else "not an image"


def _refusal(media: Any, r: BotResources, user_id: int) -> str | None:
    """Why this file is not read (not an image, too big, too many lately), or None."""
    if isinstance(media, Document) and (kind := document_kind(media)) is not None:
        return texts.NOT_AN_IMAGE.format(kind=html.escape(kind))
    if media.file_size and media.file_size > _limit(r):
        return texts.TOO_BIG.format(size=math.ceil(media.file_size / 2**20))
    wait = r.limiter.hit(user_id)
    if wait:
        return texts.RATE_LIMITED.format(limit=r.limiter.limit, wait=max(1, math.ceil(wait)))
    return None


def _limit(r: BotResources) -> int:
    return min(MAX_DOWNLOAD, r.config.max_upload_bytes)


async def _download(media: Any, limit: int) -> bytes | str:
    """The file's bytes, or the text that says why not (file_size is optional in the API)."""
    try:
        telegram_file = await media.get_file()
    except BadRequest as exc:
        if "too big" in str(exc).lower():
            return texts.TOO_BIG.format(size=">20")
        raise
    data = bytes(await telegram_file.download_as_bytearray())
    if len(data) > limit:
        return texts.TOO_BIG.format(size=math.ceil(len(data) / 2**20))
    return data


async def image(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message, user = update.effective_message, update.effective_user
    media = (message.photo[-1] if message.photo else message.document) if message else None
    if message is None or user is None or media is None:
        return
    r = res(context)
    refusal = _refusal(media, r, user.id)
    data = await _download(media, _limit(r)) if refusal is None else refusal
    if isinstance(data, str):
        await reply(message, data)
        return
    sender = Sender(user.id, "bot", message.chat_id, message.message_id, media.file_unique_id)
    from vision.decode import ImageError

    try:
        recorded = await read_and_record(
            r.vision_pool,
            r.models.current,
            r.sessions,
            r.images,
            data,
            sender,
            max_pages=r.config.max_pdf_pages,
        )
    except ImageError as exc:
        await reply(message, error_text(exc) or texts.ERROR)
        return
    for item in recorded:
        await _send(message, item)


async def _send(message: Message, item: Recorded) -> None:
    """The annotated picture with ✅/✏️, or for a page without digits a note with ✏️."""
    page, reading_id = item.page, item.reading_id
    where = (page.page, page.pages) if page.pages > 1 else (None, None)
    if page.annotated_jpeg is None:
        await reply(
            message,
            texts.no_digits(reading_id, page=where[0], pages=where[1]),
            reply_markup=keyboards.fix_keyboard(reading_id),
        )
        return
    await message.reply_photo(
        InputFile(page.annotated_jpeg, filename=f"reading-{reading_id}.jpg"),
        caption=texts.caption(
            reading_id, page.reading.text, page.low_flags, page=where[0], pages=where[1]
        ),
        parse_mode=ParseMode.HTML,
        reply_markup=keyboards.reading_keyboard(reading_id),
        do_quote=False,
    )
