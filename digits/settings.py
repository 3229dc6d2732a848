"""The one place that reads the environment (and an optional `.env` file).

Libraries never read environment variables; the dispatcher builds a `Settings` and
passes explicit values down.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_API_BASE_URL = "https://api.telegram.org/bot"
DEFAULT_FILE_BASE_URL = "https://api.telegram.org/file/bot"


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def _int_list(raw: str) -> frozenset[int]:
    ids: set[int] = set()
    for part in raw.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            ids.add(int(part))
        except ValueError as exc:
            raise SettingsError(
                f"ADMIN_IDS must be comma-separated user ids, got {part!r}"
            ) from exc
    return frozenset(ids)


def _number(name: str, default: float, kind: type = float) -> float:
    raw = _env(name)
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from exc


def _flag(name: str, default: bool) -> bool:
    raw = _env(name).lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


class SettingsError(ValueError):
    """A setting has a value the product cannot use."""


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with the defaults a fresh clone runs with."""

    data_dir: Path = Path("data")
    database_url: str = ""
    mnist_dir: Path | None = None
    devsets_dir: Path | None = None
    model_path: Path | None = None
    store_images: bool = True
    # Telegram
    telegram_token: str = ""
    api_base_url: str = DEFAULT_API_BASE_URL
    file_base_url: str = DEFAULT_FILE_BASE_URL
    admin_ids: frozenset[int] = field(default_factory=frozenset)
    rate_limit_per_minute: int = 20
    max_pdf_pages: int = 5
    webhook_url: str = ""
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = 8443
    webhook_secret: str = ""
    # How often the bot checks the database for a newly activated model (0: never).
    model_check_interval_s: float = 30.0
    # Updates handled at once (photos in flight); the reading itself uses vision_workers.
    bot_concurrent_updates: int = 32
    vision_workers: int = 0  # 0: one per CPU core
    # PyTorch intra-op threads per reading (digits read, the bot; 0: PyTorch's default of
    # one per core). Readings run in parallel on vision_workers; several threads per tiny
    # batch only fight over the same cores and wait for any core a neighbour holds.
    torch_threads: int = 1
    # Read in worker processes instead of threads: the reader's Python work does not
    # compete with the event loop for the GIL, and both cores read (bench bot: 78 vs 90
    # ms of CPU per photo, the bot's own process 25 vs 90 ms). Tests' bots use threads.
    vision_processes: bool = True
    # Learning loop
    retrain_time: str = "03:00"
    retrain_enabled: bool = True
    retrain_min_new_labels: int = 200
    retrain_epochs: int = 2
    retrain_lr: float = 3e-4
    retrain_user_fraction: float = 0.5
    retrain_epoch_size: int = 0  # samples per fine-tuning epoch; 0: sized to the user data
    retrain_holdout_fraction: float = 0.2  # share of users whose digits only judge models
    promote_max_mnist_drop: float = 0.1
    promote_min_user_gain: float = 0.0
    export_salt: str = ""

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "digits.sqlite3"

    @property
    def db_url(self) -> str:
        """DATABASE_URL, or the embedded SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.sqlite_path.resolve()}"

    @property
    def images_dir(self) -> Path:
        return self.data_dir / "images"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @classmethod
    def from_env(cls, dotenv: bool = True) -> Settings:
        if dotenv:
            from dotenv import load_dotenv

            load_dotenv(override=False)
        mnist = _env("DIGITS_MNIST_DIR")
        devsets = _env("DIGITS_DEVSETS_DIR")
        model = _env("DIGITS_MODEL_PATH")
        return cls(
            data_dir=Path(_env("DIGITS_DATA_DIR", "data")),
            database_url=_env("DATABASE_URL"),
            mnist_dir=Path(mnist) if mnist else None,
            devsets_dir=Path(devsets) if devsets else None,
            model_path=Path(model) if model else None,
            store_images=_flag("DIGITS_STORE_IMAGES", True),
            telegram_token=_env("TELEGRAM_BOT_TOKEN"),
            api_base_url=_env("TELEGRAM_API_BASE_URL", DEFAULT_API_BASE_URL),
            file_base_url=_env("TELEGRAM_FILE_BASE_URL", DEFAULT_FILE_BASE_URL),
            admin_ids=_int_list(_env("ADMIN_IDS")),
            rate_limit_per_minute=int(_number("DIGITS_RATE_LIMIT_PER_MINUTE", 20, int)),
            max_pdf_pages=int(_number("DIGITS_MAX_PDF_PAGES", 5, int)),
            webhook_url=_env("DIGITS_WEBHOOK_URL"),
            webhook_listen=_env("DIGITS_WEBHOOK_LISTEN", "0.0.0.0"),
            webhook_port=int(_number("DIGITS_WEBHOOK_PORT", 8443, int)),
            webhook_secret=_env("DIGITS_WEBHOOK_SECRET"),
            model_check_interval_s=_number("DIGITS_MODEL_CHECK_INTERVAL_S", 30.0),
            bot_concurrent_updates=int(_number("DIGITS_BOT_CONCURRENT_UPDATES", 32, int)),
            vision_workers=int(_number("DIGITS_VISION_WORKERS", 0, int)),
            torch_threads=int(_number("DIGITS_TORCH_THREADS", 1, int)),
            vision_processes=_flag("DIGITS_VISION_PROCESSES", True),
            retrain_time=_env("DIGITS_RETRAIN_TIME", "03:00"),
            retrain_enabled=_flag("DIGITS_RETRAIN_ENABLED", True),
            retrain_min_new_labels=int(_number("DIGITS_RETRAIN_MIN_NEW_LABELS", 200, int)),
            retrain_epochs=int(_number("DIGITS_RETRAIN_EPOCHS", 2, int)),
            retrain_lr=_number("DIGITS_RETRAIN_LR", 3e-4),
            retrain_user_fraction=_number("DIGITS_RETRAIN_USER_FRACTION", 0.5),
            retrain_epoch_size=int(_number("DIGITS_RETRAIN_EPOCH_SIZE", 0, int)),
            retrain_holdout_fraction=_number("DIGITS_RETRAIN_HOLDOUT_FRACTION", 0.2),
            promote_max_mnist_drop=_number("DIGITS_PROMOTE_MAX_MNIST_DROP", 0.1),
            promote_min_user_gain=_number("DIGITS_PROMOTE_MIN_USER_GAIN", 0.0),
            export_salt=_env("DIGITS_EXPORT_SALT"),
        )
