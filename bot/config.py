"""What the bot runs with, handed down by `digits bot`: the bot reads no environment."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class BotConfig:
    """The bot's part of the settings, resolved: paths, the database URL, the schedule."""

    telegram_token: str
    api_base_url: str
    file_base_url: str
    db_url: str
    data_dir: Path
    images_dir: Path | None  # None: the original pictures are not kept
    model_path: Path | None  # None: the active model version, else the shipped one
    admin_ids: frozenset[int]
    rate_limit_per_minute: int
    max_pdf_pages: int
    max_upload_bytes: int  # larger files are refused before they are downloaded
    webhook_url: str
    webhook_listen: str
    webhook_port: int
    webhook_secret: str
    model_check_interval_s: float
    concurrent_updates: int
    vision_workers: int
    torch_threads: int
    vision_processes: bool
    retrain_at: dt.time | None  # UTC; None: no daily retraining
    # The environment `digits retrain` / `digits export` subprocesses run with, so they
    # work on the bot's database and data directory however the bot was configured.
    subprocess_env: Mapping[str, str] = field(default_factory=dict)
