"""The web app's explicit configuration (``digits web`` builds it from the settings)."""

from __future__ import annotations

import logging
import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

DIGITS = (sys.executable, "-m", "digits.cli")
SECRET_FILE = "web-secret"


@dataclass(frozen=True)
class WebConfig:
    """Everything the app needs; nothing here reads the environment."""

    # From the settings (declared once, with their defaults, in digits/settings.py).
    db_url: str
    data_dir: Path
    images_dir: Path | None  # None: pictures are not kept
    model_path: Path | None
    cookie_secret: str  # empty: generated once and kept in data_dir/web-secret
    admin_password: str  # empty: the dashboard refuses every login
    max_body_bytes: int
    rate_limit_per_minute: int  # readings per client address (0: no limit)
    max_pdf_pages: int
    model_check_interval_s: float
    vision_workers: int
    torch_threads: int
    vision_processes: bool
    # The environment that reproduces these settings in a `digits` subprocess.
    subprocess_env: dict[str, str] = field(default_factory=dict)
    retrain_argv: tuple[str, ...] = (*DIGITS, "retrain")
    export_argv: tuple[str, ...] = (*DIGITS, "export")

    def secret(self) -> str:
        """The cookie-signing secret: the configured one, else the data dir's own."""
        if self.cookie_secret:
            return self.cookie_secret
        return persistent_secret(self.data_dir / SECRET_FILE)


def persistent_secret(path: Path) -> str:
    """A random secret created on first use and read back afterwards (mode 0600).

    Written to a temporary file and linked into place, so two workers starting at once
    agree on one secret.
    """
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    try:
        os.link(tmp, path)  # fails if another worker won the race: use theirs
        log.info("created the web cookie secret in %s", path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text().strip()
