"""Every setting, declared once: its name, environment variable, type, default and help.

Read from the environment or a `.env` file by pydantic-settings, only here; libraries get
explicit values from the `digits` commands. The README's settings table and the
environment handed to `digits` subprocesses are both derived from these declarations.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_API_BASE_URL = "https://api.telegram.org/bot"
DEFAULT_FILE_BASE_URL = "https://api.telegram.org/file/bot"


class SettingsError(ValueError):
    """A setting has a value the product cannot use."""


def _setting(default: Any, env: str, help_: str, shown: str | None = None) -> Any:
    """One declaration: the default, the variable it is read from, and its README row.

    `shown` is the default as the README states it, where the value itself would say
    less (an empty string that means "derived", a path that depends on the machine).
    """
    extra = {"shown": shown} if shown is not None else None
    return Field(default, alias=env, description=help_, json_schema_extra=extra)


class Settings(BaseSettings):
    """Everything configurable, with the defaults a fresh clone runs with."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        str_strip_whitespace=True,
    )

    # Data
    data_dir: Path = _setting(
        Path("data"), "DIGITS_DATA_DIR", "SQLite database, stored pictures, model versions"
    )
    database_url: str = _setting(
        "",
        "DATABASE_URL",
        "e.g. `postgresql+psycopg://user:pw@host/digits`",
        shown="SQLite in the data dir",
    )
    mnist_dir: Path | None = _setting(
        None,
        "DIGITS_MNIST_DIR",
        "folder with MNIST's four `.gz` files (downloaded there when absent and online)",
        shown="`~/.cache/digits/mnist`",
    )
    devsets_dir: Path | None = _setting(
        None, "DIGITS_DEVSETS_DIR", "folder with `usps/`, `hwd1000/`, `photos/` for evaluation"
    )
    model_path: Path | None = _setting(
        None, "DIGITS_MODEL_PATH", "a checkpoint to read and evaluate with", shown="shipped model"
    )
    store_images: bool = _setting(
        True, "DIGITS_STORE_IMAGES", "keep the original pictures (for retraining)"
    )
    # Telegram
    telegram_token: str = _setting("", "TELEGRAM_BOT_TOKEN", "the token from BotFather")
    api_base_url: str = _setting(
        DEFAULT_API_BASE_URL, "TELEGRAM_API_BASE_URL", "a self-hosted Bot API server"
    )
    file_base_url: str = _setting(DEFAULT_FILE_BASE_URL, "TELEGRAM_FILE_BASE_URL", "its file URL")
    admin_ids: Annotated[frozenset[int], NoDecode] = _setting(
        frozenset(),
        "ADMIN_IDS",
        "comma-separated Telegram user ids that may use /modelinfo, /retrain, /export",
        shown="none",
    )
    rate_limit_per_minute: int = _setting(
        20, "DIGITS_RATE_LIMIT_PER_MINUTE", "pictures per user per minute (0: no limit)"
    )
    max_pdf_pages: int = _setting(5, "DIGITS_MAX_PDF_PAGES", "longest PDF read, one reply a page")
    max_upload_bytes: int = _setting(
        50_000_000,
        "DIGITS_MAX_UPLOAD_BYTES",
        "largest file `digits read` and the bot read, refused before it is read",
    )
    webhook_url: str = _setting(
        "", "DIGITS_WEBHOOK_URL", "public HTTPS URL: webhook mode instead of long polling"
    )
    webhook_listen: str = _setting("0.0.0.0", "DIGITS_WEBHOOK_LISTEN", "webhook: address")
    webhook_port: int = _setting(8443, "DIGITS_WEBHOOK_PORT", "webhook: port")
    webhook_secret: str = _setting(
        "", "DIGITS_WEBHOOK_SECRET", "webhook: the secret Telegram sends with each update"
    )
    model_check_interval_s: float = _setting(
        30.0,
        "DIGITS_MODEL_CHECK_INTERVAL_S",
        "how often the bot looks for a newly activated model (0: never)",
    )
    bot_concurrent_updates: int = _setting(
        32, "DIGITS_BOT_CONCURRENT_UPDATES", "updates (photos in flight) handled at once"
    )
    vision_workers: int = _setting(
        0, "DIGITS_VISION_WORKERS", "parallel readings (0: one per CPU core)"
    )
    # Readings run in parallel on vision_workers; several intra-op threads per tiny batch
    # only fight over the same cores and wait for any core a neighbour holds.
    torch_threads: int = _setting(
        1,
        "DIGITS_TORCH_THREADS",
        "PyTorch threads per reading (`digits read`, the bot; 0: PyTorch's default)",
    )
    # In processes the reader's Python work does not compete with the event loop for the
    # GIL, and both cores read.
    vision_processes: bool = _setting(
        True,
        "DIGITS_VISION_PROCESSES",
        "the bot reads in worker processes (`false`: threads of the bot's process)",
    )
    # Learning loop
    retrain_time: str = _setting(
        "03:00", "DIGITS_RETRAIN_TIME", "daily retraining time, UTC (`off`: never)"
    )
    retrain_enabled: bool = _setting(
        True, "DIGITS_RETRAIN_ENABLED", "whether the bot schedules the daily retraining"
    )
    retrain_min_new_labels: int = _setting(
        200, "DIGITS_RETRAIN_MIN_NEW_LABELS", "fewer new labelled digits: the run stops early"
    )
    retrain_epochs: int = _setting(2, "DIGITS_RETRAIN_EPOCHS", "fine-tuning epochs")
    retrain_lr: float = _setting(3e-4, "DIGITS_RETRAIN_LR", "fine-tuning learning rate")
    retrain_user_fraction: float = _setting(
        0.5, "DIGITS_RETRAIN_USER_FRACTION", "share of users' digits in each fine-tuning batch"
    )
    retrain_epoch_size: int = _setting(
        0, "DIGITS_RETRAIN_EPOCH_SIZE", "samples per fine-tuning epoch (0: sized to user data)"
    )
    retrain_line_steps: int = _setting(
        600,
        "DIGITS_RETRAIN_LINE_STEPS",
        "most steps fine-tuning the line model on users' pictures (0: the segmentation stays "
        "fixed)",
    )
    retrain_line_lr: float = _setting(
        5e-4, "DIGITS_RETRAIN_LINE_LR", "the line model's fine-tuning learning rate"
    )
    retrain_holdout_fraction: float = _setting(
        0.2,
        "DIGITS_RETRAIN_HOLDOUT_FRACTION",
        "share of users whose digits only judge models, never train them",
    )
    promote_max_mnist_drop: float = _setting(
        0.1,
        "DIGITS_PROMOTE_MAX_MNIST_DROP",
        "MNIST test points a candidate may lose against the model it replaces and the "
        "shipped baseline",
    )
    promote_min_user_gain: float = _setting(
        0.0, "DIGITS_PROMOTE_MIN_USER_GAIN", "smallest user-holdout gain a promotion needs, points"
    )
    promote_min_gain_digits: int = _setting(
        3,
        "DIGITS_PROMOTE_MIN_GAIN_DIGITS",
        "user-holdout digits a candidate must read right net of those it now gets wrong",
    )
    promote_max_p_value: float = _setting(
        0.05,
        "DIGITS_PROMOTE_MAX_P",
        "one-sided sign-test p-value on the holdout digits the two models disagree on",
    )
    export_salt: str = _setting(
        "",
        "DIGITS_EXPORT_SALT",
        "salt for writers' pseudonyms in exports",
        shown="random per export",
    )
    # Web app (`digits web`)
    web_admin_password: str = _setting(
        "",
        "DIGITS_WEB_ADMIN_PASSWORD",
        "password of the `digits web` dashboard at `/admin`",
        shown="– (dashboard off)",
    )
    web_secret: str = _setting(
        "",
        "DIGITS_WEB_SECRET",
        "signs the web app's cookies (browser identity, operator session)",
        shown="generated in `DIGITS_DATA_DIR/web-secret`",
    )
    web_max_body_mb: float = _setting(
        20.0, "DIGITS_WEB_MAX_BODY_MB", "largest upload the web app accepts (413 beyond)"
    )
    web_rate_limit_per_minute: int = _setting(
        60,
        "DIGITS_WEB_RATE_LIMIT_PER_MINUTE",
        "web readings (and login attempts) per client address per minute (0: no limit)",
    )
    # Threads would share one GIL with the event loop and use about one core.
    web_vision_processes: bool = _setting(
        True,
        "DIGITS_WEB_VISION_PROCESSES",
        "the web app reads in `DIGITS_VISION_WORKERS` worker processes (`false`: threads)",
    )

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _comma_separated_ids(cls, raw: Any) -> Any:
        if not isinstance(raw, str):
            return raw
        parts = [p.strip() for p in raw.replace(";", ",").split(",") if p.strip()]
        bad = [p for p in parts if not p.lstrip("-").isdigit()]
        if bad:
            raise ValueError("must be comma-separated user ids")
        return frozenset(int(p) for p in parts)

    @field_validator("retrain_time")
    @classmethod
    def _hh_mm_or_off(cls, raw: str) -> str:
        if raw.lower() not in OFF:
            _clock_time(raw)
        return raw

    @property
    def retrain_at(self) -> dt.time | None:
        """The daily retraining's time (UTC), or None when it is off."""
        if not self.retrain_enabled or self.retrain_time.lower() in OFF:
            return None
        return _clock_time(self.retrain_time)

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
        """The settings in force: environment first, then `.env`, then the defaults."""
        try:
            return cls(_env_file=".env" if dotenv else None)  # type: ignore[call-arg]
        except ValidationError as exc:
            raise SettingsError(_one_line(exc)) from None

    def to_env(self) -> dict[str, str]:
        """Environment variables that reproduce these settings in a `digits` subprocess
        (paths made absolute, so the child may run in another directory)."""
        env = {"DATABASE_URL": self.db_url}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            empty = value is None or value == "" or value == frozenset()
            if field.alias is None or empty or name == "database_url":
                continue
            if isinstance(value, Path):
                value = value.resolve()
            elif isinstance(value, frozenset):
                value = ",".join(str(v) for v in sorted(value))
            env[field.alias] = str(value).lower() if isinstance(value, bool) else str(value)
        return env


OFF = {"", "off", "none", "never", "false", "0"}


def _clock_time(raw: str) -> dt.time:
    try:
        hours, minutes = (int(part) for part in raw.split(":", 1))
        return dt.time(hours, minutes, tzinfo=dt.UTC)
    except ValueError:
        raise ValueError("must be HH:MM (UTC) or off") from None


def _one_line(exc: ValidationError) -> str:
    error = exc.errors()[0]
    variable = str(error["loc"][0]) if error["loc"] else "a setting"
    message = error["msg"].removeprefix("Value error, ")
    return f"{variable}: {message} (got {error.get('input')!r})"


def markdown_table() -> str:
    """The README's settings table, one row per declared setting."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for field in Settings.model_fields.values():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        shown = extra.get("shown")
        if shown is None:
            default = field.default
            if isinstance(default, bool):
                default = str(default).lower()
            shown = f"`{default}`" if default not in ("", None) else "–"
        rows.append(f"| `{field.alias}` | {shown} | {field.description} |")
    return "\n".join(rows)
