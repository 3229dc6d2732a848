"""Build the Application ``digits bot`` runs, and run it (polling or webhook).

``build_application(settings)`` is used unchanged by ``digits bot`` and by the tests,
which point ``TELEGRAM_API_BASE_URL``/``TELEGRAM_FILE_BASE_URL`` at a fake server.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import importlib.util
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
from bot.handlers import BotResources
from bot.jobs import DIGITS, CommandRunner, settings_env
from bot.models import ModelManager, load_reader
from bot.ratelimit import RateLimiter
from bot.vision_pool import VisionPool, limit_threads
from digits.settings import Settings, SettingsError

log = logging.getLogger(__name__)

RESOURCES = "digits"
MISSING_TOKEN = texts.MISSING_TOKEN


def parse_retrain_time(raw: str) -> dt.time | None:
    """``HH:MM`` (UTC) for the daily retraining; ``off``/empty for none."""
    raw = raw.strip().lower()
    if raw in {"", "off", "none", "never", "false", "0"}:
        return None
    try:
        hours, minutes = (int(part) for part in raw.split(":", 1))
        return dt.time(hours, minutes, tzinfo=dt.UTC)
    except ValueError as exc:
        raise SettingsError(f"DIGITS_RETRAIN_TIME must be HH:MM (UTC) or off, got {raw!r}") from exc


def build_application(
    settings: Settings,
    *,
    retrain_argv: tuple[str, ...] | None = None,
    export_argv: tuple[str, ...] | None = None,
) -> Application:
    """The bot, handlers registered; resources are created in ``post_init``.

    ``retrain_argv``/``export_argv`` replace the ``digits retrain``/``digits export``
    command lines (tests use that to run a test double where the command is missing).
    """
    if not settings.telegram_token:
        raise SettingsError(MISSING_TOKEN)
    retrain_time = parse_retrain_time(settings.retrain_time) if settings.retrain_enabled else None

    async def post_init(app: Application) -> None:
        await _post_init(app, settings, retrain_argv, export_argv, retrain_time)

    app = (
        Application.builder()
        .token(settings.telegram_token)
        .base_url(settings.api_base_url)  # PTB appends the token
        .base_file_url(settings.file_base_url)
        .concurrent_updates(max(1, settings.bot_concurrent_updates))
        # httpcore scans its whole pool for every request: a big pool costs CPU for
        # nothing (Telegram accepts ~30 messages/s per bot anyway).
        .connection_pool_size(min(16, max(4, settings.bot_concurrent_updates)))
        .pool_timeout(30.0)
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
    settings: Settings,
    retrain_argv: tuple[str, ...] | None,
    export_argv: tuple[str, ...] | None,
    retrain_time: dt.time | None,
) -> None:
    """Migrate, open the database, load the model once, register commands and jobs."""
    if importlib.util.find_spec("sniffio") is None:
        log.warning(
            "sniffio is not installed: httpcore then searches sys.path on every request "
            "(milliseconds of CPU each); pip install sniffio"
        )
    url = settings.db_url
    await asyncio.to_thread(db.upgrade, url)
    engine = await asyncio.to_thread(db.make_engine, url)
    sessions = db.make_session_factory(engine)
    models = ModelManager(
        sessions,
        default_path=settings.model_path,
        data_dir=settings.data_dir,
        loader=functools.partial(load_reader, threads=settings.torch_threads),
    )
    await asyncio.to_thread(limit_threads, settings.torch_threads)
    await models.refresh()
    workers = settings.vision_workers
    env = settings_env(settings)
    resources = BotResources(
        settings=settings,
        engine=engine,
        sessions=sessions,
        images=db.ImageStore(settings.images_dir if settings.store_images else None),
        models=models,
        limiter=RateLimiter(settings.rate_limit_per_minute),
        vision_pool=VisionPool(workers, settings.torch_threads, settings.vision_processes),
        retrain=CommandRunner(retrain_argv or (*DIGITS, "retrain"), "retraining", env=env),
        export=CommandRunner(export_argv or (*DIGITS, "export"), "export", env=env),
    )
    app.bot_data[RESOURCES] = resources
    # Worker processes start and load the model while the bot already polls; photos
    # that come first are read in threads meanwhile: nobody waits for the workers.
    handlers.spawn(resources, resources.vision_pool.warm_up(models.current))
    await _register_commands(app, settings)
    jobs = app.job_queue
    if jobs is not None:
        if settings.model_check_interval_s > 0:
            jobs.run_repeating(
                handlers.refresh_model,
                interval=settings.model_check_interval_s,
                first=settings.model_check_interval_s,
                name="model-refresh",
            )
        if retrain_time is not None:
            jobs.run_daily(handlers.scheduled_retrain, time=retrain_time, name="retrain")
            log.info("retraining scheduled daily at %s UTC", retrain_time.strftime("%H:%M"))
    _reload_on_sighup(app, models)
    log.info(
        "bot ready: model %s, database %s", models.current.version, engine.url.render_as_string()
    )


def _reload_on_sighup(app: Application, models: ModelManager) -> None:
    """``kill -HUP <bot>`` makes it check for a newly activated model right away."""

    def reload() -> None:
        log.info("SIGHUP: checking for a newly activated model")
        app.create_task(models.refresh(), name="model-refresh-sighup")

    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / Windows
        log.debug("no SIGHUP handler in this thread")


async def _register_commands(app: Application, settings: Settings) -> None:
    public = [BotCommand(name, description) for name, description in texts.COMMANDS]
    admin = public + [BotCommand(n, d) for n, d in texts.ADMIN_COMMANDS]
    await app.bot.set_my_commands(public, scope=BotCommandScopeDefault())
    for admin_id in sorted(settings.admin_ids):
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
    await app.initialize()
    try:
        if app.post_init is not None:
            await app.post_init(app)
        assert app.updater is not None
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


def webhook_options(settings: Settings) -> dict[str, object]:
    """``run_webhook``/``start_webhook`` arguments: listen there, at the public URL's path."""
    path = urlsplit(settings.webhook_url).path.lstrip("/")
    return {
        "listen": settings.webhook_listen,
        "port": settings.webhook_port,
        "url_path": path,
        "webhook_url": settings.webhook_url,
        "secret_token": settings.webhook_secret or None,
        "allowed_updates": Update.ALL_TYPES,
    }


def run(settings: Settings) -> None:
    """Run until interrupted: a webhook when ``DIGITS_WEBHOOK_URL`` is set, else polling."""
    app = build_application(settings)
    if settings.webhook_url:
        options = webhook_options(settings)
        log.info("webhook mode: listening on %(listen)s:%(port)s/%(url_path)s", options)
        app.run_webhook(**options)  # type: ignore[arg-type]
    else:
        log.info("long polling mode")
        app.run_polling(allowed_updates=Update.ALL_TYPES)
