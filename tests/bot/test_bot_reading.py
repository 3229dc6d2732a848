"""End to end: photos in, readings out, answers stored; against the fake Telegram server."""

from __future__ import annotations

from typing import Any

from conftest import ALICE, BOB
from fake_telegram import FakeTelegram
from images import number_image
from sqlalchemy import select

import db
from bot import texts


def reading_row(sessions: Any, reading_id: int) -> db.Reading:
    with sessions() as session:
        reading = db.get_reading(session, reading_id)
        assert reading is not None
        reading.digits  # noqa: B018 - load while the session is open
        return reading


def reading_id_of(caption: str) -> int:
    found = texts.READING_TAG_RE.search(caption)
    assert found, caption
    return int(found.group(1))


async def test_photo_reply_confirm(fake: FakeTelegram, bot: Any, sessions: Any) -> None:
    await fake.send_photo_from(ALICE, number_image("3071", seed=1))
    reply = await fake.wait_for_reply(ALICE.id)
    assert reply.method == "sendPhoto"
    assert reply.file and reply.file[:3] == b"\xff\xd8\xff"  # the annotated JPEG
    assert "<pre>3071" in reply.raw
    assert [b["text"][0] for b in reply.buttons] == ["✅", "✏"]
    assert all(len(b["callback_data"].encode()) <= 64 for b in reply.buttons)
    reading_id = reading_id_of(reply.text)
    row = reading_row(sessions, reading_id)
    assert row.text == "3071" and row.status == db.ReadingStatus.PENDING
    assert len(row.digits) == 4 and row.image_sha256

    query = await fake.press_button(ALICE, reply, 0)
    await fake.wait_for_callback_answer(query)
    ack = await fake.wait_for_reply(ALICE.id)
    assert ack.text == texts.CONFIRMED
    await fake.wait_for_edit(ALICE.id, reply.message_id, "editMessageReplyMarkup")
    assert "reply_markup" not in fake.messages[(ALICE.id, reply.message_id)]
    row = reading_row(sessions, reading_id)
    assert row.status == db.ReadingStatus.CONFIRMED
    assert [d.label for d in row.digits] == [3, 0, 7, 1]
