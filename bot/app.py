"""Build the Application ``digits bot`` runs, and run it (polling or webhook).

``build_application(config)`` is used unchanged by ``digits bot`` and by the tests,
which point ``TELEGRAM_API_BASE_URL``/``TELEGRAM_FILE_BASE_URL`` at a fake server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from telegram import BotCommand, BotCommandScopeChat, BotCommandScopeDefault, Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

import db
from bot import handlers, texts
from bot.config import BotConfig
from bot.handlers import RESOURCES, BotResources
from bot.http import AiohttpRequest
from serving.model_swap import ModelManager
from serving.ratelimit import RateLimiter
from serving.startup import open_database_and_model
from serving.subprocesses import DIGITS, CommandRunner
from serving.vision_pool import VisionPool

log = logging.getLogger(__name__)

MISSING_TOKEN = texts.MISSING_TOKEN


def build_application(
    config: BotConfig,
    *,
    retrain_argv: tuple[str, ...] | None = None,
    export_argv: tuple[str, ...] | None = None,
) -> Application:
    """The bot, handlers registered; resources are created in ``post_init``.

    ``retrain_argv``/``export_argv`` replace the ``digits retrain``/``digits export``
    command lines (tests use that to run a test double where the command is missing).
    """
    if not config.telegram_token:
        raise ValueError(MISSING_TOKEN)

    async def post_init(app: Application) -> None:
        await _post_init(app, config, retrain_argv, export_argv)

    app = (
        Application.builder()
        .token(config.telegram_token)
        .base_url(config.api_base_url)  # PTB appends the token
        .base_file_url(config.file_base_url)
        .concurrent_updates(max(1, config.concurrent_updates))
        # Telegram accepts about 30 messages a second from a bot: 16 connections carry that
        # at a real network's latency.
        .request(AiohttpRequest(min(16, max(4, config.concurrent_updates))))
        .get_updates_request(AiohttpRequest(1))
        .post_init(post_init)
        .post_shutdown(_post_shutdown)
        .build()
    )
    _add_handlers(app)
    return app


def _add_handlers(app: Application) -> None:
    # Messages from people, new or edited (an edited correction is stored again, the
    # latest wins); channel posts have no sender and are ignored.
    people = filters.UpdateType.MESSAGES
    commands = {
        "start": handlers.start,
        "help": handlers.start,
        "stats": handlers.stats,
        "privacy": handlers.privacy,
        "forget": handlers.forget,
        "modelinfo": handlers.modelinfo,
        "retrain": handlers.retrain,
        "export": handlers.export,
    }
    for name, callback in commands.items():
        app.add_handler(CommandHandler(name, callback, filters=people))
    app.add_handler(MessageHandler(people & filters.COMMAND, handlers.unknown_command))
    app.add_handler(MessageHandler(people & (filters.PHOTO | filters.Document.ALL), handlers.image))
    app.add_handler(MessageHandler(people & filters.TEXT & ~filters.COMMAND, handlers.text))
    app.add_handler(MessageHandler(people & filters.Sticker.ALL, handlers.sticker))
    app.add_handler(MessageHandler(people & (filters.VOICE | filters.AUDIO), handlers.voice))
    app.add_handler(CallbackQueryHandler(handlers.button))
    app.add_handler(MessageHandler(people, handlers.other))
    app.add_error_handler(handlers.error)


async def _post_init(
    app: Application,
    config: BotConfig,
    retrain_argv: tuple[str, ...] | None,
    export_argv: tuple[str, ...] | None,
) -> None:
    """Migrate, open the database, load the model once, register commands and jobs."""
    opened = await open_database_and_model(
        config.db_url,
        model_path=config.model_path,
        data_dir=config.data_dir,
        torch_threads=config.torch_threads,
    )
    engine, sessions, models = opened.engine, opened.sessions, opened.models
    workers = config.vision_workers
    env = dict(config.subprocess_env)
    resources = BotResources(
        config=config,
        engine=engine,
        sessions=sessions,
        images=db.ImageStore(config.images_dir),
        models=models,
        limiter=RateLimiter(config.rate_limit_per_minute),
        vision_pool=VisionPool(workers, config.torch_threads, config.vision_processes),
        retrain=CommandRunner(retrain_argv or (*DIGITS, "retrain"), "retraining", env=env),
        export=CommandRunner(export_argv or (*DIGITS, "export"), "export", env=env),
    )
    app.bot_data[RESOURCES] = resources
    # Worker processes start and load the model while the bot already polls; photos
    # that come first are read in threads meanwhile: nobody waits for the workers.
    handlers.spawn(resources, resources.vision_pool.warm_up(models.current))
    await _register_commands(app, config)
    _schedule_jobs(app, config)
    _reload_on_sighup(app, models)
    log.info(
        "bot ready: model %s, database %s", models.current.version, engine.url.render_as_string()
    )


def _schedule_jobs(app: Application, config: BotConfig) -> None:
    """The model check every few seconds and the daily retraining, when configured."""
    jobs = app.job_queue
    if jobs is None:
        return
    if config.model_check_interval_s > 0:
        jobs.run_repeating(
            handlers.refresh_model,
            interval=config.model_check_interval_s,
            first=config.model_check_interval_s,
            name="model-refresh",
        )
    if config.retrain_at is not None:
        jobs.run_daily(handlers.scheduled_retrain, time=config.retrain_at, name="retrain")
        log.info("retraining scheduled daily at %s UTC", config.retrain_at.strftime("%H:%M"))


def _reload_on_sighup(app: Application, models: ModelManager) -> None:
    """``kill -HUP <bot>`` makes it check for a newly activated model right away."""

    def reload() -> None:
        log.info("SIGHUP: checking for a newly activated model")
        app.create_task(models.refresh(), name="model-refresh-sighup")

    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / Windows
        log.debug("no SIGHUP handler in this thread")


async def _register_commands(app: Application, config: BotConfig) -> None:
    public = [BotCommand(name, description) for name, description in texts.COMMANDS]
    admin = public + [BotCommand(n, d) for n, d in texts.ADMIN_COMMANDS]
    await app.bot.set_my_commands(public, scope=BotCommandScopeDefault())
    for admin_id in sorted(config.admin_ids):
        try:  # fails for an admin who has never talked to the bot: not fatal
            await app.bot.set_my_commands(admin, scope=BotCommandScopeChat(admin_id))
        except TelegramError as exc:
            log.warning("could not register admin commands for %s: %s", admin_id, exc)


async def _post_shutdown(app: Application) -> None:
    resources: BotResources | None = app.bot_data.pop(RESOURCES, None)
    if resources is None:
        return
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
    for task in list(resources.background):
        task.cancel()
    if resources.background:
        await asyncio.gather(*resources.background, return_exceptions=True)
    await asyncio.to_thread(resources.vision_pool.shutdown)
    await asyncio.to_thread(resources.engine.dispose)


@contextlib.asynccontextmanager
async def running(app: Application, *, poll_timeout: float = 10.0) -> AsyncIterator[Application]:
    """Run ``app`` with long polling inside an event loop that is already running.

    The same steps, in the same order, as ``Application.run_polling`` (which owns its
    loop and signals, so tests and embedders use this instead).
    """
    if app.updater is None:
        raise ValueError("long polling needs an Application built with an Updater")
    await app.initialize()
    try:
        if app.post_init is not None:
            await app.post_init(app)
        await app.updater.start_polling(
            poll_interval=0.0, timeout=int(poll_timeout), allowed_updates=Update.ALL_TYPES
        )
        await app.start()
        try:
            yield app
        finally:
            if app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()
    finally:
        await app.shutdown()
        if app.post_shutdown is not None:
            await app.post_shutdown(app)


def webhook_options(config: BotConfig) -> dict[str, object]:
    """``run_webhook``/``start_webhook`` arguments: listen there, at the public URL's path."""
    path = urlsplit(config.webhook_url).path.lstrip("/")
    return {
        "listen": config.webhook_listen,
        "port": config.webhook_port,
        "url_path": path,
        "webhook_url": config.webhook_url,
        "secret_token": config.webhook_secret or None,
        "allowed_updates": Update.ALL_TYPES,
    }


def run(config: BotConfig) -> None:
    """Run until interrupted: a webhook when ``DIGITS_WEBHOOK_URL`` is set, else polling."""
    app = build_application(config)
    if config.webhook_url:
        options = webhook_options(config)
        log.info("webhook mode: listening on %(listen)s:%(port)s/%(url_path)s", options)
        app.run_webhook(**options)  # type: ignore[arg-type]
    else:
        log.info("long polling mode")
        app.run_polling(allowed_updates=Update.ALL_TYPES)
