"""End to end: every command, /forget, admin-only commands, and each kind of bad input."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from typing import Any

import pytest
from botkit import ADMIN, ALICE, BOB, FAKE_DIGITS, with_
from sqlalchemy import select

import db
from benchmarks.fake_telegram import FakeTelegram
from benchmarks.images import number_image
from bot import texts
from bot.app import RESOURCES
from digits.settings import Settings
from serving import service


async def ask(fake: FakeTelegram, user: Any, text: str) -> Any:
    await fake.send_text_from(user, text)
    return await fake.wait_for_reply(user.id)


async def test_commands_registered_and_informational(fake: FakeTelegram, bot: Any) -> None:
    public = ["start", "help", "stats", "privacy", "forget"]
    assert [c["command"] for c in fake.commands] == public
    admin_scope = json.dumps({"chat_id": ADMIN.id, "type": "chat"}, sort_keys=True)
    admin = [c["command"] for c in fake.commands_by_scope[admin_scope]]
    assert admin == [*public, "modelinfo", "retrain", "export"]
    assert fake.calls["deleteWebhook"] >= 1  # polling mode clears any webhook
    for command in ("/start", "/help"):
        reply = await ask(fake, ALICE, command)
        assert "I read handwritten numbers" in reply.text and "/forget" in reply.text
    reply = await ask(fake, ALICE, "/privacy")
    assert "What I store and why" in reply.text
    reply = await ask(fake, ALICE, "/nonsense")
    assert reply.text == texts.UNKNOWN_COMMAND


async def test_stats(fake: FakeTelegram, bot: Any) -> None:
    assert (await ask(fake, ALICE, "/stats")).text == texts.STATS_NONE
    for text, seed in (("12", 7), ("345", 8)):
        await fake.send_photo_from(ALICE, number_image(text, seed=seed))
    replies = [await fake.wait_for_reply(ALICE.id) for _ in range(2)]
    # Handled concurrently: the replies may come in either order.
    first, second = sorted(replies, key=lambda r: "<pre>345" in r.raw)
    await fake.press_button(ALICE, first, 0)  # confirm "12"
    await fake.wait_for_reply(ALICE.id)
    await fake.press_button(ALICE, second, 1)  # fix "345" -> "348"
    await fake.wait_for_reply(ALICE.id)
    await fake.send_text_from(ALICE, "348")
    await fake.wait_for_reply(ALICE.id)
    reply = await ask(fake, ALICE, "/stats")
    assert "Readings: 2 (1 confirmed, 1 corrected, 0 not answered yet)" in reply.text
    assert "80.0 % (4 of 5 checked digits)" in reply.text


async def test_forget_deletes_everything_after_confirmation(
    fake: FakeTelegram, bot: Any, sessions: Any, settings: Settings
) -> None:
    await fake.send_photo_from(ALICE, number_image("909", seed=9))
    await fake.wait_for_reply(ALICE.id)
    await fake.send_photo_from(BOB, number_image("11", seed=10))
    await fake.wait_for_reply(BOB.id)
    store = db.ImageStore(settings.images_dir)
    assert len(list(store.iter_sha256())) == 2

    ask_reply = await ask(fake, ALICE, "/forget")
    assert ask_reply.text == texts.FORGET_ASK and len(ask_reply.buttons) == 2
    query = await fake.press_button(BOB, ask_reply, 0)  # someone else cannot
    assert (await fake.wait_for_callback_answer(query))["text"] == texts.NOT_YOUR_READING
    await fake.press_button(ALICE, ask_reply, 1)  # cancel
    edit = await fake.wait_for_edit(ALICE.id, ask_reply.message_id, "editMessageText")
    assert edit["text"] == texts.FORGET_CANCELLED
    with sessions() as session:
        assert db.get_user(session, ALICE.id) is not None

    fake.edits.clear()
    ask_reply = await ask(fake, ALICE, "/forget")
    await fake.press_button(ALICE, ask_reply, 0)
    edit = await fake.wait_for_edit(ALICE.id, ask_reply.message_id, "editMessageText")
    assert edit["text"].startswith("Done: deleted 1 readings and 1 pictures")
    with sessions() as session:
        assert db.get_user(session, ALICE.id) is None
        assert db.get_user(session, BOB.id) is not None  # Bob's data untouched
    assert len(list(store.iter_sha256())) == 1


async def test_admin_commands_refused_politely(fake: FakeTelegram, bot: Any) -> None:
    for command in ("/modelinfo", "/retrain", "/export"):
        assert (await ask(fake, ALICE, command)).text == texts.ADMIN_ONLY


async def test_modelinfo_for_admin(fake: FakeTelegram, bot: Any) -> None:
    reply = await ask(fake, ADMIN, "/modelinfo")
    assert "Loaded model" in reply.text and texts.NO_ACTIVE_MODEL in reply.text


@pytest.mark.slow
async def test_retrain_runs_the_real_command_and_reports(fake: FakeTelegram, bot: Any) -> None:
    await fake.send_text_from(ADMIN, "/retrain")
    await fake.send_text_from(ADMIN, "/retrain")  # a double tap: handled concurrently
    first = [(await fake.wait_for_reply(ADMIN.id)).text for _ in range(2)]
    assert sorted(first) == sorted([texts.RETRAIN_STARTED, texts.RETRAIN_BUSY])
    done = await fake.wait_for_reply(ADMIN.id, timeout=90)
    # No corrections yet: `digits retrain` skips, and says why.
    assert done.text.startswith("Retraining finished: skipped; "), done.text
    assert "new label" in done.text
    # It registered the shipped model as the active version: same weights, so the bot
    # adopts the version name without reloading anything.
    assert "Now reading with" not in done.text
    models = bot.bot_data[RESOURCES].models
    assert models.current.from_db and models.swaps == 0


async def test_retrain_lock_held_elsewhere(
    fake: FakeTelegram, bot: Any, settings: Settings
) -> None:
    from training.runlock import RunLock

    lock = RunLock(settings.data_dir / "retrain.lock", "a retrain")
    lock.acquire()  # as a cron job or another instance would
    try:
        await ask(fake, ADMIN, "/retrain")
        report = await fake.wait_for_reply(ADMIN.id, timeout=90)
        assert report.text == texts.RETRAIN_LOCKED
    finally:
        lock.release()


async def test_export_sends_the_dataset_as_zip(fake: FakeTelegram, bot: Any) -> None:
    await fake.send_photo_from(ALICE, number_image("1234", seed=12))
    reply = await fake.wait_for_reply(ALICE.id)
    await fake.press_button(ALICE, reply, 0)
    await fake.wait_for_reply(ALICE.id)
    assert (await ask(fake, ADMIN, "/export")).text == texts.EXPORT_STARTED
    sent = await fake.wait_for_reply(ADMIN.id, timeout=90)
    assert sent.method == "sendDocument", sent.text
    assert sent.file_name == "digits-dataset.zip"
    with zipfile.ZipFile(io.BytesIO(sent.file or b"")) as archive:
        names = archive.namelist()
        assert any(name.endswith(".npz") for name in names), names


async def test_export_failure_is_reported(
    fake: FakeTelegram, bot_with_double: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_DIGITS_EXIT", "2")
    await ask(fake, ADMIN, "/export")
    report = await fake.wait_for_reply(ADMIN.id, timeout=30)
    assert report.text.startswith("Export failed (exit code 2)")


async def test_bad_inputs_each_get_one_clear_line(
    fake: FakeTelegram, bot: Any, sessions: Any
) -> None:
    cases = [
        (
            fake.send_document_from(
                ALICE, b"just text", file_name="notes.txt", mime_type="text/plain"
            ),
            "this file is a TXT file",
        ),
        (
            fake.send_document_from(
                ALICE,
                b"\xff\xd8\xff" + bytes(100),
                file_name="big.jpg",
                mime_type="image/jpeg",
                file_size=25 * 2**20,
            ),
            "Telegram lets bots download at most 20 MB",
        ),
        (fake.send_photo_from(ALICE, b"\xff\xd8\xff\xe0 this is not really a jpeg"), "damaged"),
        (
            fake.send_document_from(
                ALICE, b"%PDF-1.4 garbage", file_name="x.pdf", mime_type="application/pdf"
            ),
            "PDF file is damaged",
        ),
        (fake.send_sticker_from(ALICE), texts.STICKER),
        (fake.send_voice_from(ALICE), texts.VOICE),
        (
            fake.send_message_from(ALICE, location={"latitude": 1.0, "longitude": 2.0}),
            texts.OTHER_MESSAGE,
        ),
    ]
    for send, expected in cases:
        await send
        reply = await fake.wait_for_reply(ALICE.id)
        assert expected.lower() in reply.text.lower(), (expected, reply.text)
        assert "\n" not in reply.text
    with sessions() as session:
        assert session.scalar(select(db.Reading.id)) is None
    # ...and the bot is still there.
    assert "I read handwritten numbers" in (await ask(fake, ALICE, "/help")).text


async def test_pdf_over_the_page_limit(
    fake: FakeTelegram, settings: Settings, start_bot: Any
) -> None:
    from PIL import Image

    await start_bot(with_(settings, max_pdf_pages=2))
    pages = [Image.new("RGB", (200, 100), "white") for _ in range(3)]
    buffer = io.BytesIO()
    pages[0].save(buffer, format="PDF", save_all=True, append_images=pages[1:])
    await fake.send_document_from(
        ALICE, buffer.getvalue(), file_name="long.pdf", mime_type="application/pdf"
    )
    reply = await fake.wait_for_reply(ALICE.id)
    assert "3 pages" in reply.text and "at most 2" in reply.text


async def test_channel_posts_and_edits(fake: FakeTelegram, bot: Any, sessions: Any) -> None:
    channel = {"id": -100123, "type": "channel", "title": "News"}
    await fake._push(
        {"channel_post": {"message_id": 1, "date": 0, "chat": channel, "text": "hello"}}
    )
    assert await fake.no_reply(-100123, 0.5)  # no sender: ignored, no error
    await fake.send_photo_from(ALICE, number_image("58", seed=13))
    reply = await fake.wait_for_reply(ALICE.id)
    await fake.press_button(ALICE, reply, 1)
    await fake.wait_for_reply(ALICE.id)
    typed = await fake.send_text_from(ALICE, "59")
    await fake.wait_for_reply(ALICE.id)
    # The person edits their correction: the edit is the latest answer.
    await fake._push({"edited_message": {**typed, "text": "68", "edit_date": 1}})
    ack = await fake.wait_for_reply(ALICE.id)
    assert ack.text.startswith("✏️ Thanks, saved: 68")
    with sessions() as session:
        (row,) = db.recent_readings(session, ALICE.id)
        assert row.corrected_text == "68"
    await fake.send_text_from(ALICE, "77")  # a new text, no fix pending: just a hint
    assert (await fake.wait_for_reply(ALICE.id)).text == texts.NOTHING_TO_CORRECT


async def test_rate_limit(fake: FakeTelegram, settings: Settings, start_bot: Any) -> None:
    await start_bot(with_(settings, rate_limit_per_minute=2))
    photo = number_image("5", seed=11)
    for _ in range(3):
        await fake.send_photo_from(ALICE, photo)
    replies = [await fake.wait_for_reply(ALICE.id) for _ in range(3)]
    limited = [r for r in replies if r.method == "sendMessage"]
    assert len(limited) == 1 and "at most 2 a minute" in limited[0].text
    await fake.send_photo_from(BOB, photo)  # per user: Bob is not affected
    assert (await fake.wait_for_reply(BOB.id)).method == "sendPhoto"


async def test_error_handler_answers_and_bot_survives(
    fake: FakeTelegram, bot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(service, "stats", broken)
    assert (await ask(fake, ALICE, "/stats")).text == texts.ERROR
    monkeypatch.undo()
    assert (await ask(fake, ALICE, "/stats")).text == texts.STATS_NONE


async def test_responsive_while_20_photos_in_flight(fake: FakeTelegram, bot: Any) -> None:
    users = [type(ALICE)(200000 + i, f"U{i}") for i in range(20)]
    for i, user in enumerate(users):
        await fake.send_photo_from(user, number_image(str(1000 + i), seed=100 + i))
    await fake.send_text_from(ALICE, "/help")
    loop = asyncio.get_running_loop()
    start = loop.time()
    await fake.wait_for_reply(ALICE.id, timeout=10)
    help_at = loop.time()
    replies = [await fake.wait_for_reply(u.id, timeout=60) for u in users]
    assert [r.method for r in replies] == ["sendPhoto"] * 20
    assert all(f"<pre>{1000 + i}" in r.raw for i, r in enumerate(replies))
    last = max(r.at for r in replies)
    # Not queued behind the photos: answered while they are still being read.
    assert help_at < last, (help_at - start, last - start)
    assert help_at - start < max(2.0, 0.5 * (last - start)), (help_at - start, last - start)


def test_missing_token_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    from digits.commands import bot as cli

    code = cli.run(None, Settings(telegram_token=""))  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "@BotFather" in err


def test_fake_digits_is_used_only_as_a_double() -> None:
    assert FAKE_DIGITS[1].endswith("fake_digits.py")
