"""Webhook mode against PostgreSQL: how several instances behind a load balancer run."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator

import httpx
import pytest
from botkit import ALICE, with_

import db
from benchmarks.fake_telegram import FakeTelegram
from benchmarks.images import number_image
from bot import texts
from bot.app import build_application, webhook_options
from digits.commands.bot import bot_config
from digits.settings import Settings


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    from benchmarks.pgserver import PostgresUnavailable, throwaway_postgres

    try:
        with throwaway_postgres() as server:
            yield server.create_database("digits_bot")
    except PostgresUnavailable as exc:  # CI has the binaries; say why if not
        pytest.fail(f"PostgreSQL is needed for the webhook test: {exc}", pytrace=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.postgres
async def test_webhook_instances_share_postgres(
    fake: FakeTelegram, settings: Settings, postgres_url: str
) -> None:
    """Two instances: the photo reaches one, the correction the other; both work."""
    ports = [free_port(), free_port()]
    apps = []
    for port in ports:
        s = with_(
            settings,
            database_url=postgres_url,
            webhook_url="https://bot.example.com/hook/abc",
            webhook_listen="127.0.0.1",
            webhook_port=port,
            webhook_secret="s3cret",
        )
        app = build_application(bot_config(s))
        await app.initialize()
        await app.post_init(app)
        await app.updater.start_webhook(**webhook_options(bot_config(s)))
        await app.start()
        apps.append(app)
    try:
        assert (
            fake.webhook is not None and fake.webhook["url"] == "https://bot.example.com/hook/abc"
        )
        assert fake.webhook["secret_token"] == "s3cret"

        async def deliver(port: int, secret: str = "s3cret") -> int:
            update = fake.take_update()
            async with httpx.AsyncClient() as client:
                response = await client.post(
                    f"http://127.0.0.1:{port}/hook/abc",
                    content=json.dumps(update),
                    headers={
                        "Content-Type": "application/json",
                        "X-Telegram-Bot-Api-Secret-Token": secret,
                    },
                )
            return response.status_code

        await fake.send_photo_from(ALICE, number_image("6180", seed=31))
        assert await deliver(ports[0]) == 200
        reply = await fake.wait_for_reply(ALICE.id, timeout=30)
        assert "<pre>6180" in reply.raw
        reading_id = int(texts.READING_TAG_RE.search(reply.text).group(1))

        await fake.send_text_from(ALICE, "6189", reply_to=reply.message)
        assert await deliver(ports[1]) == 200  # the other instance knows nothing in memory
        ack = await fake.wait_for_reply(ALICE.id, timeout=30)
        assert ack.text.startswith("✏️ Thanks, saved: 6189")

        await fake.send_text_from(ALICE, "/help")
        assert await deliver(ports[1], secret="wrong") == 403  # not from Telegram
        await asyncio.sleep(0.2)
        assert await fake.no_reply(ALICE.id, 0.3)

        engine = db.make_engine(postgres_url)
        try:
            with db.make_session_factory(engine)() as session:
                row = db.get_reading(session, reading_id)
                assert row is not None and row.corrected_text == "6189"
                assert [d.label for d in row.digits] == [6, 1, 8, 9]
        finally:
            engine.dispose()
    finally:
        for app in apps:
            await app.updater.stop()
            await app.stop()
            await app.shutdown()
            await app.post_shutdown(app)


def test_webhook_options_from_settings() -> None:
    options = webhook_options(
        bot_config(
            Settings(webhook_url="https://x.example/a/b", webhook_port=88, webhook_secret="")
        )
    )
    assert options["url_path"] == "a/b" and options["port"] == 88
    assert options["secret_token"] is None
