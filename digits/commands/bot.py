"""``digits bot``: run the Telegram bot (long polling, or a webhook by setting)."""

from __future__ import annotations

import argparse
import sys

from bot.config import BotConfig
from digits.settings import Settings


def register(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Settings come from the environment or .env: TELEGRAM_BOT_TOKEN, DATABASE_URL, "
        "DIGITS_DATA_DIR, ADMIN_IDS, DIGITS_WEBHOOK_URL (webhook mode), see README."
    )


def bot_config(settings: Settings) -> BotConfig:
    """The bot's part of the settings, resolved."""
    return BotConfig(
        telegram_token=settings.telegram_token,
        api_base_url=settings.api_base_url,
        file_base_url=settings.file_base_url,
        db_url=settings.db_url,
        data_dir=settings.data_dir,
        images_dir=settings.images_dir if settings.store_images else None,
        model_path=settings.model_path,
        admin_ids=settings.admin_ids,
        rate_limit_per_minute=settings.rate_limit_per_minute,
        max_pdf_pages=settings.max_pdf_pages,
        max_upload_bytes=settings.max_upload_bytes,
        webhook_url=settings.webhook_url,
        webhook_listen=settings.webhook_listen,
        webhook_port=settings.webhook_port,
        webhook_secret=settings.webhook_secret,
        model_check_interval_s=settings.model_check_interval_s,
        concurrent_updates=settings.bot_concurrent_updates,
        vision_workers=settings.vision_workers,
        torch_threads=settings.torch_threads,
        vision_processes=settings.vision_processes,
        retrain_at=settings.retrain_at,
        subprocess_env=settings.to_env(),
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
    run_bot(bot_config(settings))
    return 0
