"""Settings: declared once, read from the environment, handed on to subprocesses."""

from __future__ import annotations

from pathlib import Path

import pytest

from digits.settings import Settings, SettingsError, markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_settings_table_is_the_declared_one() -> None:
    assert markdown_table() in README.read_text()
    assert markdown_table().count("\n| `") == len(Settings.model_fields)


def test_environment_values_are_parsed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    monkeypatch.setenv("ADMIN_IDS", " 7, 8;9 ")
    monkeypatch.setenv("DIGITS_STORE_IMAGES", "off")
    monkeypatch.setenv("DIGITS_RETRAIN_LR", "1e-3")
    monkeypatch.setenv("DIGITS_MNIST_DIR", "")  # empty means unset
    s = Settings.from_env()
    assert s.admin_ids == frozenset({7, 8, 9})
    assert s.store_images is False and s.retrain_lr == 1e-3 and s.mnist_dir is None


def test_dotenv_is_read_below_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("DIGITS_MAX_PDF_PAGES=9\nDIGITS_WEBHOOK_PORT=88\n")
    monkeypatch.setenv("DIGITS_WEBHOOK_PORT", "443")
    s = Settings.from_env()
    assert (s.max_pdf_pages, s.webhook_port) == (9, 443)
    assert Settings.from_env(dotenv=False).max_pdf_pages == 5


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DIGITS_RATE_LIMIT_PER_MINUTE", "ten"),
        ("ADMIN_IDS", "12,abc"),
        ("DIGITS_STORE_IMAGES", "maybe"),
        ("DIGITS_RETRAIN_LR", "fast"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as info:
        Settings.from_env()
    message = str(info.value)
    assert message.startswith(variable) and value in message and "\n" not in message


def test_to_env_reproduces_the_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    original = Settings(
        data_dir=tmp_path / "d",
        mnist_dir=tmp_path / "m",
        admin_ids=frozenset({3, 1}),
        store_images=False,
        retrain_epochs=7,
    )
    env = original.to_env()
    assert env["DIGITS_DATA_DIR"] == str((tmp_path / "d").resolve())
    assert env["ADMIN_IDS"] == "1,3" and env["DIGITS_STORE_IMAGES"] == "false"
    monkeypatch.chdir(tmp_path)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    again = Settings.from_env()
    assert again.db_url == original.db_url
    for name in ("mnist_dir", "admin_ids", "store_images", "retrain_epochs"):
        assert getattr(again, name) == getattr(original, name), name
