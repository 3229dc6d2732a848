"""The bad-input corpus (tests/vision/corpus.py) through the bot's photo and document
handlers, against the fake Telegram server: every file gets the reading of its number,
"no digits", or the documented error's sentence; never the generic error reply, never a
logged error, each answered within 10 s."""

from __future__ import annotations

import json
import logging
import time

import pytest
from botkit import with_

import db
from benchmarks.fake_telegram import FakeTelegram, FakeUser
from bot import texts
from tests.datadirs import mnist_dir
from tests.vision import corpus

pytestmark = pytest.mark.slow  # the whole bad-input corpus through a real bot

MIME = {"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif", "bmp": "image/bmp",
        "webp": "image/webp", "tif": "image/tiff", "pdf": "application/pdf"}  # fmt: skip
MAX_SECONDS = 10.0
MAX_PAGES = 5  # the bot's default DIGITS_MAX_PDF_PAGES


@pytest.fixture(scope="module")
def cases() -> list[corpus.Case]:
    from training.data.mnist import load_mnist
    from vision import DigitClassifier

    _, test = load_mnist(mnist_dir(), allow_download=False)
    return corpus.build(corpus.glyphs(DigitClassifier.load(), test.images, test.labels))


def _acceptable(case: corpus.Case) -> list[tuple[str, object]]:
    """("error", class name) or ("pages", [texts]) outcomes, as the bot reads this file:
    one page for images, every page for PDF and TIFF (see serving.service.read_image)."""
    multi = case.data[:4] in (b"II*\x00", b"MM\x00*") or b"%PDF-" in case.data[:1024]
    out: list[tuple[str, object]] = []
    for outcome in case.expected_document() if multi else case.read:
        kind, _, value = outcome.partition(":")
        if kind == "error":
            out.append(("error", value))
        else:
            out.append(("pages", json.loads(value) if kind == "pages" else [value]))
    return out


def _refusal(case: corpus.Case) -> tuple[str, str] | None:
    """(class, sentence) of the ImageError decoding raises in the bot, if any."""
    from vision.decode import ImageError, decode_for_reading, iter_pages, sniff_format

    try:
        if sniff_format(case.data) in {"pdf", "tiff"}:
            for _ in iter_pages(case.data, max_pages=MAX_PAGES):
                pass
        else:
            decode_for_reading(case.data, max_side=800)
    except ImageError as exc:
        return type(exc).__name__, str(exc)
    return None


@pytest.mark.parametrize("how", ["document", "photo"])
async def test_corpus_through_the_bot(
    how: str, cases, fake: FakeTelegram, settings, start_bot, caplog
) -> None:
    caplog.set_level(logging.ERROR)
    app = await start_bot(with_(settings, rate_limit_per_minute=0, store_images=False))
    sessions = app.bot_data["digits"].sessions
    problems: list[str] = []
    slowest = (0.0, "")
    for index, case in enumerate(cases):
        user = FakeUser(300000 + index, "Corpus")
        start = time.monotonic()
        if how == "document":
            await fake.send_document_from(
                user,
                case.data,
                file_name=f"{case.name}.{case.suffix}",
                mime_type=MIME.get(case.suffix, "image/jpeg"),  # a client may lie
            )
        else:
            await fake.send_photo_from(user, case.data)
        first = await fake.wait_for_reply(user.id, timeout=30)
        if len(case.data) > 20 * 2**20:  # Telegram's download limit: refused unread
            if first.text != texts.TOO_BIG.format(size=-(-len(case.data) // 2**20)):
                problems.append(f"{case.name}: {first.text!r}")
            continue
        want = _acceptable(case)
        refused = _refusal(case)
        if refused is not None:
            if ("error", refused[0]) not in want or first.text != refused[1]:
                problems.append(f"{case.name}: {first.text!r}, want {want}")
            continue
        count = max(len(v) for k, v in want if k == "pages")  # type: ignore[arg-type]
        replies = [first]
        while len(replies) < count:
            replies.append(await fake.wait_for_reply(user.id, timeout=30))
        took = time.monotonic() - start
        slowest = max(slowest, (took, case.name))
        got = []
        for reply in replies:
            if reply.method == "sendPhoto":
                found = texts.READING_TAG_RE.search(reply.text)
                with sessions() as session:
                    got.append(db.get_reading(session, int(found.group(1))).text)
            elif texts.NO_DIGITS in reply.text or texts.NO_DIGITS_PAGE in reply.text:
                got.append("")
            else:
                got.append(f"unexpected reply: {reply.text}")
        if ("pages", got) not in want:
            problems.append(f"{case.name}: got {got}, want {want}")
    assert not problems, "\n".join(problems)
    assert slowest[0] < MAX_SECONDS, slowest
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors
    assert not [s for s in fake.sent if s.text == texts.ERROR]
