"""The bot's side of the learning loop: hot model swap, scheduled retraining, one at a time."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from botkit import ADMIN, ALICE, FAKE_DIGITS, with_
from telegram.ext import CallbackContext

import db
from benchmarks.fake_telegram import FakeTelegram
from benchmarks.images import number_image
from bot import handlers, texts
from bot.app import RESOURCES, _reload_on_sighup
from digits.settings import Settings, SettingsError
from serving.model_swap import ModelManager
from serving.subprocesses import CommandRunner, describe_summary, last_json_line
from vision.classifier import DEFAULT_MODEL_PATH


def new_model(tmp_path: Path, name: str) -> Path:
    """A model file of our own: the shipped weights, saved as another version."""
    from vision.checkpoint import load_checkpoint, save_checkpoint

    path = tmp_path / "models" / f"{name}.pt"
    body = load_checkpoint(DEFAULT_MODEL_PATH)
    body["version"] = name
    save_checkpoint(path, body)
    return path


def activate(sessions: Any, path: Path, version: str | None = None) -> str:
    version = version or path.stem
    with sessions() as session, session.begin():
        db.register_model_version(
            session,
            version=version,
            path=str(path),
            sha256=db.sha256_hex(path.read_bytes()),
            parent_version=None,
            data_summary={},
            metrics={"mnist_accuracy": 0.99},
            status="active",
        )
    return version


@pytest.fixture
def migrated(settings: Settings) -> Settings:
    db.upgrade(settings.db_url)
    return settings


async def test_hot_swap_under_concurrent_reads(
    migrated: Settings, sessions: Any, tmp_path: Path
) -> None:
    manager = ModelManager(sessions, data_dir=migrated.data_dir)
    assert await manager.refresh() is False  # first load: the shipped default
    old = manager.current
    assert not old.from_db
    photo = number_image("5821", seed=21)
    seen: list[list[tuple[str, str]]] = [[] for _ in range(4)]
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader_thread(out: list[tuple[str, str]]) -> None:
        while not stop.is_set():
            try:
                model = manager.current  # once per request, as the handler does
                out.append((model.version, model.reader.read(photo).text))
            except BaseException as exc:
                errors.append(exc)
                return

    threads = [threading.Thread(target=reader_thread, args=(s,)) for s in seen]
    for thread in threads:
        thread.start()
    await asyncio.sleep(0.5)
    version = await asyncio.to_thread(activate, sessions, new_model(tmp_path, "v2"))
    assert await manager.refresh() is True
    await asyncio.sleep(0.8)
    stop.set()
    for thread in threads:
        await asyncio.to_thread(thread.join)

    assert not errors
    assert manager.current.version == version and manager.swaps == 1
    assert manager.current.reader.segmenter is old.reader.segmenter  # loaded once
    every = [item for out in seen for item in out]
    assert {text for _, text in every} == {"5821"}  # no read failed or went wrong
    assert {v for v, _ in every} == {old.version, version}
    for out in seen:  # per thread: the old model until the swap, then only the new one
        versions = [v for v, _ in out]
        first_new = versions.index(version) if version in versions else len(versions)
        assert set(versions[first_new:]) <= {version}
    # The old reader still works for a request that took it before the swap.
    assert old.reader.read(photo).text == "5821"
    assert await manager.refresh() is False  # unchanged: nothing reloaded


async def test_broken_model_keeps_the_current_one(
    migrated: Settings, sessions: Any, tmp_path: Path
) -> None:
    manager = ModelManager(sessions)
    await manager.refresh()
    before = manager.current
    broken = tmp_path / "models" / "broken.pt"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not a checkpoint")
    await asyncio.to_thread(activate, sessions, broken)
    assert await manager.refresh() is False
    assert manager.current is before
    assert manager.current.reader.read(number_image("3", seed=22)).text == "3"


async def test_bot_switches_model_without_restart(
    fake: FakeTelegram, settings: Settings, start_bot: Any, sessions: Any, tmp_path: Path
) -> None:
    await start_bot(with_(settings, model_check_interval_s=0.3))
    await fake.send_photo_from(ALICE, number_image("42", seed=23))
    await fake.wait_for_reply(ALICE.id)
    version = await asyncio.to_thread(activate, sessions, new_model(tmp_path, "v7"))
    await asyncio.sleep(1.5)  # the periodic check picks it up
    await fake.send_photo_from(ALICE, number_image("42", seed=24))
    await fake.wait_for_reply(ALICE.id)
    with sessions() as session:
        rows = db.recent_readings(session, ALICE.id)
        assert rows[0].model_version == version
        assert rows[1].model_version != version


async def test_sighup_checks_for_a_new_model_at_once(
    fake: FakeTelegram, bot: Any, sessions: Any, tmp_path: Path
) -> None:
    import os
    import signal

    models = bot.bot_data[RESOURCES].models
    version = await asyncio.to_thread(activate, sessions, new_model(tmp_path, "v5"))
    loop = asyncio.get_running_loop()
    assert loop.remove_signal_handler(signal.SIGHUP)  # the bot installed one...
    _reload_on_sighup(bot, models)  # ...put it back, and use it
    os.kill(os.getpid(), signal.SIGHUP)
    for _ in range(100):
        if models.current.version == version:
            break
        await asyncio.sleep(0.1)
    assert models.current.version == version and models.swaps == 1


async def test_retrain_command_promotes_and_bot_swaps(
    fake: FakeTelegram, bot_with_double: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_DIGITS_ACTIVATE", str(new_model(tmp_path, "v3")))
    await fake.send_text_from(ADMIN, "/retrain")
    assert (await fake.wait_for_reply(ADMIN.id)).text == texts.RETRAIN_STARTED
    done = await fake.wait_for_reply(ADMIN.id, timeout=30)
    assert done.text.startswith("Retraining finished: promoted, now v3; fake retrain")
    assert texts.MODEL_SWAPPED.format(version="v3") in done.text
    assert bot_with_double.bot_data[RESOURCES].models.current.version == "v3"
    await fake.send_text_from(ADMIN, "/modelinfo")
    info = await fake.wait_for_reply(ADMIN.id)
    assert "Active in database: v3" in info.text and "mnist_accuracy: 0.99" in info.text


async def test_scheduled_retraining_never_runs_twice_at_once(
    fake: FakeTelegram,
    bot_with_double: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs = tmp_path / "runs.log"
    monkeypatch.setenv("FAKE_DIGITS_LOG", str(runs))
    monkeypatch.setenv("FAKE_DIGITS_SLEEP", "1.0")
    context = CallbackContext(bot_with_double)
    # The daily job fires three times at once, and an admin asks while it runs.
    jobs = asyncio.gather(*(handlers.scheduled_retrain(context) for _ in range(3)))
    await asyncio.sleep(0.3)
    await fake.send_text_from(ADMIN, "/retrain")
    assert (await fake.wait_for_reply(ADMIN.id)).text == texts.RETRAIN_BUSY
    await jobs
    report = await fake.wait_for_reply(ADMIN.id, timeout=30)
    assert report.text.startswith("Scheduled retraining finished: promoted; fake retrain")
    assert runs.read_text().count("retrain start") == 1


async def test_retrain_failure_is_reported(
    fake: FakeTelegram, bot_with_double: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_DIGITS_EXIT", "3")
    await handlers.scheduled_retrain(CallbackContext(bot_with_double))
    report = await fake.wait_for_reply(ADMIN.id, timeout=30)
    assert report.text.startswith("Retraining failed (exit code 3): failed; fake retrain")


async def test_daily_job_scheduled_or_off(
    fake: FakeTelegram, settings: Settings, start_bot: Any
) -> None:
    app = await start_bot(with_(settings, retrain_enabled=True, retrain_time="04:30"))
    (job,) = app.job_queue.get_jobs_by_name("retrain")
    when = job.next_t.astimezone(dt.UTC)
    assert (when.hour, when.minute) == (4, 30)
    assert with_(settings, retrain_enabled=True, retrain_time="off").retrain_at is None
    assert with_(settings, retrain_enabled=False, retrain_time="04:30").retrain_at is None


@pytest.mark.parametrize("raw", ["25:99", "4pm", "12"])
def test_a_bad_retrain_time_is_refused_at_start(
    raw: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIGITS_RETRAIN_TIME", raw)
    with pytest.raises(SettingsError, match="DIGITS_RETRAIN_TIME: must be HH:MM"):
        Settings.from_env()


async def test_command_runner_one_at_a_time() -> None:
    runner = CommandRunner(
        (*FAKE_DIGITS, "retrain"), "retraining", env={"FAKE_DIGITS_SLEEP": "0.5"}
    )
    started = time.monotonic()
    results = await asyncio.gather(runner.run(), runner.run(), runner.run())
    assert [r is None for r in results].count(False) == 1
    outcome = next(r for r in results if r is not None)
    assert outcome.ok and outcome.summary == {"status": "promoted", "reason": "fake retrain"}
    assert time.monotonic() - started < 5 and not runner.running
    assert await runner.run() is not None  # free again afterwards


async def test_command_runner_hands_over_progress_lines() -> None:
    import sys

    script = (
        "import sys\n"
        "sys.stderr.write('retrain: start\\nepoch 1: 50%\\repoch 1: 100%\\n')\n"
        "sys.stderr.write('x' * 100000 + '\\nlast')\n"
        'print(\'{"status": "skipped"}\')'
    )
    runner = CommandRunner((sys.executable, "-c", script), "progress")
    lines: list[str] = []
    outcome = await runner.run(on_output=lines.append)
    assert outcome is not None and outcome.ok and outcome.summary == {"status": "skipped"}
    assert lines[:3] == ["retrain: start", "epoch 1: 50%", "epoch 1: 100%"]
    assert lines[-1] == "last" and len(lines) == 5
    assert outcome.stderr_tail.endswith("last") and len(outcome.stderr_tail) <= 4000


def test_retrain_summary_sentence() -> None:
    summary = {
        "status": "promoted",
        "reason": "better on users' digits",
        "version": "v20261121-0300",
        "new_labels": 240,
        "active": {"mnist_test_accuracy": 0.991, "user_holdout_accuracy": 0.9},
        "candidate": {"mnist_test_accuracy": 0.9905, "user_holdout_accuracy": 0.95},
    }
    assert describe_summary(summary) == (
        "promoted, now v20261121-0300; better on users' digits; MNIST 99.10 % → 99.05 %; "
        "users 90.00 % → 95.00 %; 240 new labels"
    )
    assert describe_summary({"out": "/x", "train": 3}) == "out: /x, train: 3"


def test_last_json_line() -> None:
    assert last_json_line('noise\n{"a": 1}\n{"b": 2}\ntrailing\n') == {"b": 2}
    assert last_json_line("no json here") is None


async def test_vision_processes_read_and_follow_a_swap(
    fake: FakeTelegram, settings: Settings, start_bot: Any, sessions: Any, tmp_path: Path
) -> None:
    """Readings in worker processes; the swapped-in model reaches them by request."""
    app = await start_bot(with_(settings, vision_processes=True, vision_workers=2))
    await fake.send_photo_from(ALICE, number_image("314", seed=41))
    assert "<pre>314" in (await fake.wait_for_reply(ALICE.id, timeout=60)).raw
    version = await asyncio.to_thread(activate, sessions, new_model(tmp_path, "v9"))
    assert await app.bot_data[RESOURCES].models.refresh() is True
    await fake.send_photo_from(ALICE, number_image("271", seed=42))
    assert "<pre>271" in (await fake.wait_for_reply(ALICE.id, timeout=60)).raw
    with sessions() as session:
        assert db.recent_readings(session, ALICE.id)[0].model_version == version


async def test_the_bot_answers_before_its_worker_processes_are_warm(
    fake: FakeTelegram, settings: Settings, start_bot: Any, monkeypatch: Any
) -> None:
    """Processes are the default; they start beside polling, and photos that come
    before they are ready are read in threads of the bot's process."""
    from serving.vision_pool import VisionPool

    assert Settings().vision_processes is True
    assert Settings.from_env(dotenv=False).vision_processes is True
    release = asyncio.Event()
    original = VisionPool._start

    async def slow_start(self: VisionPool) -> None:
        await release.wait()  # the fork server "imports PyTorch" until the test says so
        await original(self)

    monkeypatch.setattr(VisionPool, "_start", slow_start)
    app = await start_bot(with_(settings, vision_processes=True, vision_workers=1))
    pool = app.bot_data[RESOURCES].vision_pool
    await fake.send_text_from(ALICE, "/start")
    assert "I read handwritten numbers" in (await fake.wait_for_reply(ALICE.id)).text
    await fake.send_photo_from(ALICE, number_image("58", seed=43))
    assert "<pre>58" in (await fake.wait_for_reply(ALICE.id, timeout=60)).raw
    assert not pool.ready  # read in a thread: the workers are still starting
    release.set()
    await asyncio.wait_for(pool.warm_up(pool_model(app)), 60)
    assert pool.ready
    await fake.send_photo_from(ALICE, number_image("316", seed=44))
    assert "<pre>316" in (await fake.wait_for_reply(ALICE.id, timeout=60)).raw


def pool_model(app: Any) -> Any:
    return app.bot_data[RESOURCES].models.current
