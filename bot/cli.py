"""``digits bot``: run the Telegram bot (long polling, or a webhook by setting)."""

from __future__ import annotations

import argparse
import sys

from digits.settings import Settings


def register(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Settings come from the environment or .env: TELEGRAM_BOT_TOKEN, DATABASE_URL, "
        "DIGITS_DATA_DIR, ADMIN_IDS, DIGITS_WEBHOOK_URL (webhook mode), see README."
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.texts import MISSING_TOKEN

    if not settings.telegram_token:
        sys.stderr.write(MISSING_TOKEN + "\n")
        return 2
    import logging

    import db
    from bot.app import run as run_bot

    # What the bot needs before it talks to Telegram, checked here so that a broken
    # database or a missing model is the dispatcher's one line, not a logged traceback.
    db.upgrade(settings.db_url)
    if settings.model_path is not None:
        from vision.checkpoint import load_checkpoint

        load_checkpoint(settings.model_path)

    # httpx logs every request at INFO, URL (with the bot token) included.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    run_bot(settings)
    return 0
