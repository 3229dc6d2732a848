"""Admins' commands: /modelinfo, /retrain (and the daily one), /export.

Training and export run as `digits` subprocesses (serving.subprocesses), never here.
"""

from __future__ import annotations

import asyncio
import html
import logging
import math
import shutil
import tempfile
from pathlib import Path

from telegram import InputFile, Message, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot import texts
from bot.handlers.common import is_admin, reply, res, spawn
from serving import service
from serving.subprocesses import Outcome

log = logging.getLogger(__name__)

MAX_UPLOAD = 50 * 1024 * 1024  # the largest file a bot may send


async def _admin_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Message | None:
    """The message of an admin's command; None (after saying so) for anyone else."""
    message = update.effective_message
    if message is None:
        return None
    if not is_admin(update, context):
        await reply(message, texts.ADMIN_ONLY)
        return None
    return message


async def modelinfo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = await _admin_message(update, context)
    if message is None:
        return
    r = res(context)
    loaded = r.models.current
    active = await asyncio.to_thread(service.active_model, r.sessions)
    await reply(
        message,
        texts.model_info(
            loaded.version,
            loaded.path,
            active[0] if active else None,
            active[1] if active else None,
        ),
    )


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


def _retrain_report(outcome: Outcome, *, scheduled: bool) -> str:
    summary = html.escape(outcome.describe())
    if outcome.summary and outcome.summary.get("status") == "locked":
        return texts.RETRAIN_LOCKED
    if outcome.ok:
        template = texts.RETRAIN_SCHEDULED if scheduled else texts.RETRAIN_DONE
        return template.format(summary=summary)
    return texts.RETRAIN_FAILED.format(code=outcome.returncode, summary=summary)


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
    text = _retrain_report(outcome, scheduled=scheduled)
    if await r.models.refresh():
        text += "\n" + texts.MODEL_SWAPPED.format(version=html.escape(r.models.current.version))
    await notify_admins(context, text, also=requested_by)
    return outcome


async def retrain(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = await _admin_message(update, context)
    if message is not None:
        spawn(res(context), run_retrain(context, requested_by=message.chat_id, scheduled=False))


async def scheduled_retrain(context: ContextTypes.DEFAULT_TYPE) -> None:
    """JobQueue callback: the daily retraining (skipped while one is running)."""
    if res(context).retrain.running:
        log.info("scheduled retraining skipped: one is still running")
        return
    await run_retrain(context, requested_by=None, scheduled=True)


async def refresh_model(context: ContextTypes.DEFAULT_TYPE) -> None:
    """JobQueue callback: swap to a newly activated model (from any bot instance)."""
    await res(context).models.refresh()


async def export(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = await _admin_message(update, context)
    if message is not None:
        spawn(res(context), _export(context, message))


async def _export(context: ContextTypes.DEFAULT_TYPE, message: Message) -> None:
    """Run ``digits export`` into a temporary folder and send it zipped (or keep it)."""
    r = res(context)
    workdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="digits-export-"))
    try:
        out = workdir / "dataset"
        outcome = await r.export.run(
            "--out",
            str(out),
            "--format",
            "npz",
            on_start=lambda: reply(message, texts.EXPORT_STARTED),
        )
        if outcome is None or not outcome.ok:
            await reply(message, _export_failure(outcome))
            return
        archive = workdir / "digits-dataset.zip"
        size = await asyncio.to_thread(service.zip_folder, out, archive)
        await _send_or_keep(message, archive, size, r.config.data_dir / "exports")
    finally:
        await asyncio.to_thread(shutil.rmtree, workdir, True)


async def _send_or_keep(message: Message, archive: Path, size: int, keep_in: Path) -> None:
    """Send the archive; one too large for a bot to send is kept on the server."""
    if size > MAX_UPLOAD:
        kept = await asyncio.to_thread(service.keep_file, archive, keep_in)
        path = html.escape(str(kept))
        await reply(message, texts.EXPORT_TOO_BIG.format(size=math.ceil(size / 2**20), path=path))
        return
    await message.reply_document(
        InputFile(await asyncio.to_thread(archive.read_bytes), filename=archive.name),
        caption=texts.EXPORT_CAPTION.format(size=math.ceil(size / 1024)),
        do_quote=False,
    )


def _export_failure(outcome: Outcome | None) -> str:
    if outcome is None:
        return texts.EXPORT_BUSY
    return texts.EXPORT_FAILED.format(
        code=outcome.returncode, summary=html.escape(outcome.describe())
    )
