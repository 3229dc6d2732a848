"""`digits web [--host H] [--port P] [--workers N]`: serve the web app with uvicorn.

Wires the settings into ``web.config.WebConfig``; the ``web`` package itself never
reads the environment nor imports ``digits``.
"""

from __future__ import annotations

import argparse
import logging

from digits.settings import Settings


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free one)")
    parser.add_argument(
        "--workers", type=int, default=1, help="server processes, each with its own model"
    )
    parser.add_argument(
        "--proxy-headers",
        action="store_true",
        help="trust X-Forwarded-For/-Proto from 127.0.0.1 (behind a reverse proxy)",
    )
    parser.epilog = (
        "Settings: DIGITS_DATA_DIR, DATABASE_URL, DIGITS_WEB_ADMIN_PASSWORD, DIGITS_WEB_SECRET, "
        "DIGITS_WEB_MAX_BODY_MB, DIGITS_WEB_RATE_LIMIT_PER_MINUTE (see README)."
    )


def web_config(settings: Settings):  # -> web.config.WebConfig
    """The web app's configuration from the product's settings."""
    from web.config import WebConfig

    return WebConfig(
        db_url=settings.db_url,
        data_dir=settings.data_dir,
        images_dir=settings.images_dir if settings.store_images else None,
        model_path=settings.model_path,
        cookie_secret=settings.web_secret,
        admin_password=settings.web_admin_password,
        max_body_bytes=int(settings.web_max_body_mb * 2**20),
        rate_limit_per_minute=settings.web_rate_limit_per_minute,
        max_pdf_pages=settings.max_pdf_pages,
        model_check_interval_s=settings.model_check_interval_s,
        vision_workers=settings.vision_workers,
        torch_threads=settings.torch_threads,
        vision_processes=settings.web_vision_processes,
        subprocess_env=settings.to_env(),
    )


def make_app():  # -> fastapi.FastAPI; uvicorn's factory for each worker process
    from web.app import create_app

    return create_app(web_config(Settings.from_env()))


def run(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    # httpx (used by nothing here, but imported by dependencies) logs every request.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    options = {
        "host": args.host,
        "port": args.port,
        "proxy_headers": args.proxy_headers,
        "forwarded_allow_ips": "127.0.0.1" if args.proxy_headers else None,
        "log_level": "info",
        "access_log": False,
    }
    if args.workers > 1:
        # Each worker builds its own app (and model) from the environment.
        uvicorn.run("digits.commands.web:make_app", factory=True, workers=args.workers, **options)
        return 0
    from web.app import create_app

    web_config(settings).secret()  # create the data dir's secret before serving
    uvicorn.run(create_app(web_config(settings)), **options)
    return 0
