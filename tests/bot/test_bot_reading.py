"""End to end: photos in, readings out, answers stored; against the fake Telegram server."""

from __future__ import annotations

from typing import Any

from botkit import ALICE, BOB
from sqlalchemy import select

import db
from benchmarks.fake_telegram import FakeTelegram
from benchmarks.images import number_image
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


async def test_fix_with_correction_then_overwrite(
    fake: FakeTelegram, bot: Any, sessions: Any
) -> None:
    await fake.send_photo_from(ALICE, number_image("4520", seed=2))
    reply = await fake.wait_for_reply(ALICE.id)
    reading_id = reading_id_of(reply.text)

    query = await fake.press_button(ALICE, reply, 1)
    await fake.wait_for_callback_answer(query)
    prompt = await fake.wait_for_reply(ALICE.id)
    assert prompt.params["reply_markup"]["force_reply"] is True
    assert f"reading #{reading_id}" in prompt.text

    await fake.send_text_from(ALICE, "hello")  # not a number: refused, nothing stored
    refused = await fake.wait_for_reply(ALICE.id)
    assert refused.text.startswith("That is not a number")
    assert reading_row(sessions, reading_id).status == db.ReadingStatus.PENDING

    await fake.send_text_from(ALICE, "4 5 2 9")  # the pending correction, as typed
    ack = await fake.wait_for_reply(ALICE.id)
    assert ack.text.startswith("✏️ Thanks, saved: 4 5 2 9")
    await fake.wait_for_edit(ALICE.id, reply.message_id, "editMessageReplyMarkup")
    row = reading_row(sessions, reading_id)
    assert row.status == db.ReadingStatus.CORRECTED
    assert [d.label for d in row.digits] == [4, 5, 2, 9]

    # Later, a reply to the prompt corrects the same reading again: the latest wins.
    await fake.send_text_from(ALICE, "4520", reply_to=prompt.message)
    await fake.wait_for_reply(ALICE.id)
    row = reading_row(sessions, reading_id)
    assert row.corrected_text == "4520"
    assert [d.label for d in row.digits] == [4, 5, 2, 0]

    # A count that does not match the digits found is stored for review, not labelled.
    await fake.send_text_from(ALICE, "45201", reply_to=reply.message)
    review = await fake.wait_for_reply(ALICE.id)
    assert "checked before training" in review.text
    row = reading_row(sessions, reading_id)
    assert row.status == db.ReadingStatus.REVIEW and row.corrected_text == "45201"
    assert [d.label for d in row.digits] == [None] * 4


async def test_nobody_else_can_answer(fake: FakeTelegram, bot: Any, sessions: Any) -> None:
    await fake.send_photo_from(ALICE, number_image("77", seed=3))
    reply = await fake.wait_for_reply(ALICE.id)
    reading_id = reading_id_of(reply.text)
    for index in (0, 1):
        query = await fake.press_button(BOB, reply, index)
        answer = await fake.wait_for_callback_answer(query)
        assert answer["text"] == texts.NOT_YOUR_READING
    await fake.send_text_from(BOB, "78", reply_to=reply.message)
    refused = await fake.wait_for_reply(BOB.id)
    assert refused.text == texts.NOT_YOUR_READING
    row = reading_row(sessions, reading_id)
    assert row.status == db.ReadingStatus.PENDING and row.corrected_text is None


async def test_text_without_pending_reading_gets_a_hint(fake: FakeTelegram, bot: Any) -> None:
    await fake.send_text_from(ALICE, "1234")
    hint = await fake.wait_for_reply(ALICE.id)
    assert hint.text == texts.NOTHING_TO_CORRECT


async def test_no_digits_explains_and_the_number_can_still_be_typed(
    fake: FakeTelegram, bot: Any, sessions: Any
) -> None:
    """Nothing found: the reply says how to photograph and offers only ✏️; the number
    typed is stored as the reading's correction, waiting for review (no digits were cut),
    so it can still teach the model."""
    from benchmarks.images import blank_image

    await fake.send_photo_from(ALICE, blank_image(".jpg"))
    reply = await fake.wait_for_reply(ALICE.id)
    assert reply.method == "sendMessage" and texts.NO_DIGITS in reply.text
    (button,) = reply.buttons
    assert button["text"] == texts.BUTTON_FIX
    reading_id = int(texts.READING_TAG_RE.search(reply.text).group(1))
    row = reading_row(sessions, reading_id)
    assert row.status == db.ReadingStatus.PENDING and row.text == "" and not row.digits

    query = await fake.press_button(ALICE, reply, 0)
    await fake.wait_for_callback_answer(query)
    prompt = await fake.wait_for_reply(ALICE.id)
    assert f"reading #{reading_id}" in prompt.text
    await fake.send_text_from(ALICE, "417")
    await fake.wait_for_reply(ALICE.id)
    row = reading_row(sessions, reading_id)
    assert row.corrected_text == "417" and row.status == db.ReadingStatus.REVIEW


async def test_image_and_pdf_sent_as_files(fake: FakeTelegram, bot: Any, sessions: Any) -> None:
    await fake.send_document_from(
        ALICE, number_image("2024", seed=4, fmt=".png"), file_name="scan.png"
    )
    reply = await fake.wait_for_reply(ALICE.id)
    assert reply.method == "sendPhoto" and "<pre>2024" in reply.raw

    import io

    import cv2
    import numpy as np
    from PIL import Image

    pages = []
    for text, seed in (("135", 5), ("8642", 6)):
        array = cv2.imdecode(np.frombuffer(number_image(text, seed=seed, fmt=".png"), np.uint8), 1)
        pages.append(Image.fromarray(cv2.cvtColor(array, cv2.COLOR_BGR2RGB)))
    buffer = io.BytesIO()
    pages[0].save(buffer, format="PDF", save_all=True, append_images=pages[1:], resolution=72)
    await fake.send_document_from(
        ALICE, buffer.getvalue(), file_name="scan.pdf", mime_type="application/pdf"
    )
    first = await fake.wait_for_reply(ALICE.id)
    second = await fake.wait_for_reply(ALICE.id)
    assert first.text.startswith("Page 1/2") and "<pre>135" in first.raw
    assert second.text.startswith("Page 2/2") and "<pre>8642" in second.raw
    assert reading_id_of(first.text) != reading_id_of(second.text)
    with sessions() as session:
        rows = session.scalars(select(db.Reading).order_by(db.Reading.id)).all()
        assert [r.text for r in rows] == ["2024", "135", "8642"]
        assert rows[1].image_sha256 == rows[2].image_sha256  # one stored PDF
