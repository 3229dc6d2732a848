"""Handler-level pieces: captions, callback data, the rate limiter, document triage."""

from __future__ import annotations

import html
import os
import subprocess
import sys
from pathlib import Path

import pytest
from telegram import Document

from bot import keyboards, texts
from bot.handlers.reading import document_kind
from serving.ratelimit import RateLimiter


def test_caption_marks_low_confidence_digits_under_them() -> None:
    caption = texts.caption(7, "12 345\n67", [False, True, False, False, True, False, False])
    body = caption.split("<pre>")[1].split("</pre>")[0]
    assert body.split("\n") == ["12 345", " ^   ^", "67"]
    assert caption.startswith("reading #7\n") and "^ = not sure" in caption


def test_caption_without_doubts_has_no_marker_line() -> None:
    caption = texts.caption(1, "2024", [False] * 4, page=2, pages=3)
    assert caption.startswith("Page 2/3 · reading #1")
    assert "<pre>2024</pre>" in caption and "^" not in caption


def test_caption_fits_telegram_limit_even_for_huge_readings() -> None:
    text = "\n".join(["1234567890 " * 8] * 30)
    caption = texts.caption(123456789, text, [True] * 2400)
    visible = html.unescape(caption.replace("<pre>", "").replace("</pre>", ""))
    assert len(visible) <= 1024 and texts.READING_TAG_RE.search(caption)


def test_caption_escapes_html() -> None:
    assert "<pre>1&lt;2</pre>" in texts.caption(1, "1<2", [False, False])


def test_callback_data_round_trip_and_limit() -> None:
    markup = keyboards.reading_keyboard(2**62)
    (row,) = markup.inline_keyboard
    assert [b.text for b in row] == [texts.BUTTON_CONFIRM, texts.BUTTON_FIX]
    for button, action in zip(row, (keyboards.CONFIRM, keyboards.FIX), strict=True):
        assert len(button.callback_data.encode()) <= 64
        assert keyboards.decode(button.callback_data) == keyboards.Callback(action, 2**62)
    for junk in (None, "", "c:", "c:abc", "zz:1", "c:1:2", "x" * 65):
        assert keyboards.decode(junk) is None


def test_rate_limiter_sliding_window() -> None:
    now = [0.0]
    limiter = RateLimiter(3, window=60.0, clock=lambda: now[0])
    assert [limiter.hit(1) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.hit(1) == 60.0  # refused; not counted
    assert limiter.hit(2) == 0.0  # per user
    now[0] = 30.0
    assert limiter.hit(1) == 30.0
    now[0] = 60.0  # the first three slide out of the window
    assert limiter.hit(1) == 0.0
    assert RateLimiter(0).hit(1) == 0.0  # 0 disables


def test_document_triage() -> None:
    def doc(name: str | None, mime: str | None) -> Document:
        return Document("id", "uid", file_name=name, mime_type=mime)

    assert document_kind(doc("scan.pdf", "application/pdf")) is None
    assert document_kind(doc("IMG_1.HEIC", "image/heic")) is None  # vision says if unreadable
    assert document_kind(doc("photo.jpg", "application/octet-stream")) is None
    assert document_kind(doc("notes.txt", "text/plain")) == "a TXT file"
    assert document_kind(doc(None, "video/mp4")) == "of type video/mp4"


# Runs in a fresh interpreter: the fork server is started once per process, and in the
# test session an earlier test has started it already.
_START_POOL = """
import asyncio, os, time
from serving.vision_pool import VisionPool

async def main():
    pool = VisionPool(1, 1, processes=True)
    gaps = []

    async def tick():
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.02)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.1)
    await pool._start()
    pids = await asyncio.get_running_loop().run_in_executor(pool._executor, os.getpid)
    ticker.cancel()
    pool.shutdown()
    print(max(gaps), pids != os.getpid())

if __name__ == "__main__":
    asyncio.run(main())
"""


@pytest.mark.slow
def test_starting_worker_processes_leaves_the_event_loop_free(tmp_path: Path) -> None:
    """The fork server imports PyTorch before it answers (seconds): not on the loop."""
    script = tmp_path / "start_pool.py"
    script.write_text(_START_POOL)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    gap, other_process = out.stdout.split()
    assert other_process == "True"
    assert float(gap) < 0.5  # the loop ticked on while the processes started (2.3 s)
