"""`digits web`'s wiring: settings -> WebConfig, the kept secret, one-way imports."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from digits.cli import COMMANDS, main
from digits.commands.web import web_config
from digits.settings import Settings
from web.config import persistent_secret


def test_settings_reach_the_web_config(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        web_admin_password="pw",
        web_secret="s3",
        web_max_body_mb=2.5,
        web_rate_limit_per_minute=7,
        store_images=False,
        max_pdf_pages=3,
        web_vision_processes=False,
    )
    config = web_config(settings)
    assert config.db_url == settings.db_url and config.data_dir == tmp_path
    assert (config.admin_password, config.cookie_secret) == ("pw", "s3")
    assert config.max_body_bytes == int(2.5 * 2**20) and config.rate_limit_per_minute == 7
    assert config.images_dir is None and config.max_pdf_pages == 3
    assert config.vision_processes is False and web_config(Settings()).vision_processes is True
    assert config.subprocess_env["DATABASE_URL"] == settings.db_url
    assert config.secret() == "s3"


def test_web_settings_come_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("DIGITS_WEB_ADMIN_PASSWORD", "hunter2")
    monkeypatch.setenv("DIGITS_WEB_SECRET", "xyz")
    monkeypatch.setenv("DIGITS_WEB_MAX_BODY_MB", "5")
    monkeypatch.setenv("DIGITS_WEB_RATE_LIMIT_PER_MINUTE", "0")
    monkeypatch.setenv("DIGITS_WEB_VISION_PROCESSES", "false")
    settings = Settings.from_env(dotenv=False)
    assert settings.web_admin_password == "hunter2" and settings.web_secret == "xyz"
    assert settings.web_max_body_mb == 5.0 and settings.web_rate_limit_per_minute == 0
    assert settings.web_vision_processes is False


def test_the_secret_is_made_once_and_kept_private(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "web-secret"
    first = persistent_secret(path)
    assert len(first) >= 32 and persistent_secret(path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in path.parent.iterdir() if p.name != "web-secret"]


def test_the_command_is_registered(capsys) -> None:
    assert COMMANDS["web"][0] == "web" and COMMANDS["bench web"][0] == "bench_web"
    import pytest

    with pytest.raises(SystemExit) as exited:  # argparse exits after printing the help
        main(["web", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "--port" in out and "--host" in out and "DIGITS_WEB_ADMIN_PASSWORD" in out


def test_the_web_package_never_imports_digits() -> None:
    code = (
        "import sys, web.app, web.admin;"
        "assert 'telegram' not in sys.modules, 'the web app loaded the Telegram library';"
        "print(sorted(m for m in sys.modules if m == 'digits' or m.startswith('digits.')))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "[]"
