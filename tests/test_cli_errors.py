"""Every command fails in one line with a non-zero status: broken or unreachable database,
missing or unreadable model, unusable path. Run as a user runs them, in subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from digits.cli import main

REPO = Path(__file__).resolve().parent.parent
DEAD_POSTGRES = "postgresql://digits:secret@127.0.0.1:1/digits"  # nothing listens on port 1


@pytest.fixture(scope="module")
def places(tmp_path_factory) -> dict[str, Path]:
    import db

    root = tmp_path_factory.mktemp("cli-errors")
    broken = root / "broken"
    broken.mkdir()
    (broken / "digits.sqlite3").write_text("this is not a database\n")
    good = root / "good"
    good.mkdir()
    db.upgrade(f"sqlite:///{good / 'digits.sqlite3'}")
    text_model = root / "notes.pt"
    text_model.write_text("not a model\n")
    a_file = root / "a-file"
    a_file.write_text("x\n")
    image = root / "ok.png"
    image.write_bytes(
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x00\x00"
        b"\x00\x00:~\x9bU\x00\x00\x00\nIDATx\x9cc\xf8\x0f\x00\x01\x01\x01\x00\x18\xdd\x8d\xb4"
        b"\x00\x00\x00\x00IEND\xaeB`\x82"
    )
    return {
        "root": root,
        "broken": broken,
        "good": good,
        "text_model": text_model,
        "a_file": a_file,
        "image": image,
    }


def _cases(p: dict[str, Path]) -> list[tuple[str, list[str], dict[str, str], str]]:
    broken = {"DIGITS_DATA_DIR": str(p["broken"])}
    dead_pg = {"DIGITS_DATA_DIR": str(p["good"]), "DATABASE_URL": DEAD_POSTGRES}
    good = {"DIGITS_DATA_DIR": str(p["good"])}
    bot = {"TELEGRAM_BOT_TOKEN": "1:abc", "TELEGRAM_API_BASE_URL": "http://127.0.0.1:1/bot"}
    out = str(p["root"] / "export-out")
    missing = str(p["root"] / "missing.pt")
    text_model = str(p["text_model"])
    unreadable = "cannot read checkpoint"
    image = str(p["image"])
    return [
        ("broken db", ["models"], broken, "not a database"),
        ("broken db", ["models", "activate", "v1"], broken, "not a database"),
        ("broken db", ["retrain", "--force", "--quiet"], broken, "not a database"),
        ("broken db", ["export", out], broken, "not a database"),
        ("broken db", ["db", "upgrade"], broken, "not a database"),
        ("broken db", ["db", "current"], broken, "not a database"),
        ("broken db", ["bot"], {**broken, **bot}, "not a database"),
        ("no postgres", ["models"], dead_pg, "Connection refused"),
        ("no postgres", ["retrain", "--force", "--quiet"], dead_pg, "Connection refused"),
        ("no postgres", ["export", out], dead_pg, "Connection refused"),
        ("bad version", ["models", "activate", ""], good, "non-empty"),
        ("missing model", ["read", "--model", missing, image], good, "not found"),
        ("text model", ["read", "--model", text_model, image], good, unreadable),
        ("missing model", ["evaluate", "--model", missing], good, "not found"),
        ("text model", ["bench", "classify", "--model", text_model], good, unreadable),
        ("text model", ["bot"], {**good, **bot, "DIGITS_MODEL_PATH": text_model}, unreadable),
        ("bad path", ["read", "--annotate", str(p["a_file"]), image], good, "needs a folder"),
        ("bad path", ["read", "--annotate", "/proc/no/such", image], good, "No such file"),
        ("bad path", ["export", str(p["a_file"])], good, "exists"),
    ]


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = (
        {k: v for k, v in os.environ.items() if not k.startswith(("DIGITS_", "DATABASE_"))}
        | {"PYTHONPATH": str(REPO)}
        | env
    )
    return subprocess.run(
        [sys.executable, "-m", "digits.cli", *args],
        capture_output=True,
        text=True,
        env=full,
        cwd=env.get("DIGITS_DATA_DIR", str(REPO)),  # no stray .env file is picked up
        timeout=120,
    )


@pytest.mark.slow
def test_every_command_fails_in_one_line(places) -> None:
    cases = _cases(places)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda case: _run(case[1], case[2]), cases))
    problems = []
    for (what, args, _, expected), proc in zip(cases, results, strict=True):
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        ok = (
            proc.returncode not in (0, None)
            and len(lines) == 1
            and "Traceback" not in proc.stderr
            and expected in lines[0]
        )
        if not ok:
            problems.append(f"{what} {' '.join(args)[:60]}: rc {proc.returncode}, {lines}")
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_retrain_ends_with_its_json_summary_when_the_database_is_broken(places) -> None:
    """The bot and cron relay the last stdout line; a failure must still produce one."""
    proc = _run(["retrain", "--force", "--quiet"], {"DIGITS_DATA_DIR": str(places["broken"])})
    assert proc.returncode == 1
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["status"] == "failed" and "not a database" in summary["reason"]


@pytest.mark.parametrize("version", ["", "   ", "x" * 300, "v\udcff"])
def test_models_activate_refuses_unusable_names_in_one_line(
    places, version: str, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("DIGITS_DATA_DIR", str(places["good"]))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["models", "activate", version]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("digits models activate: ")
    assert len(err) < 200
