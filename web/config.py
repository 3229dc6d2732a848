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

    db_url: str
    data_dir: Path
    images_dir: Path | None = None  # None: pictures are not kept
    model_path: Path | None = None
    cookie_secret: str = ""  # empty: generated once and kept in data_dir/web-secret
    admin_password: str = ""  # empty: the dashboard refuses every login
    max_body_bytes: int = 20 * 1024 * 1024
    rate_limit_per_minute: int = 60  # readings per client address (0: no limit)
    max_pdf_pages: int = 5
    model_check_interval_s: float = 30.0
    vision_workers: int = 0
    torch_threads: int = 1
    vision_processes: bool = False
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
