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

    from bot.app import run as run_bot

    # httpx logs every request at INFO, URL (with the bot token) included.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    run_bot(settings)
    return 0
