"""The bot's aiohttp client under PTB's request API: uploads, and failures as PTB's errors."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from aiohttp import web
from telegram import InputFile
from telegram.error import NetworkError, TimedOut
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter

from bot.http import AiohttpRequest


async def _server(handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


async def test_parameters_and_files_reach_the_server() -> None:
    seen: dict[str, object] = {}

    async def handler(request: web.Request) -> web.Response:
        form = await request.post()
        for name, value in form.items():  # an upload's file closes with the request
            seen[name] = (value.filename, value.file.read()) if hasattr(value, "file") else value
        seen["agent"] = request.headers.get("User-Agent", "")
        return web.json_response({"ok": True})

    runner, base = await _server(handler)
    client = AiohttpRequest(2)
    await client.initialize()
    try:
        plain = RequestData([RequestParameter("chat_id", 42, None)])
        status, body = await client.do_request(f"{base}/sendMessage", "POST", plain)
        assert status == 200 and json.loads(body) == {"ok": True}
        assert seen["chat_id"] == "42" and "python-telegram-bot" in str(seen["agent"])
        photo = InputFile(b"\x89PNG fake bytes", filename="reading.png")
        upload = RequestData(
            [RequestParameter("chat_id", 7, None), RequestParameter.from_input("photo", photo)]
        )
        status, _ = await client.do_request(f"{base}/sendPhoto", "POST", upload)
        assert status == 200 and seen["chat_id"] == "7"
        assert seen["photo"] == ("reading.png", b"\x89PNG fake bytes")
    finally:
        await client.shutdown()
        await runner.cleanup()


async def test_a_server_that_never_answers_is_a_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = AiohttpRequest(1, read_timeout=0.2)
    await client.initialize()
    try:
        with pytest.raises(TimedOut):
            await client.do_request(f"http://127.0.0.1:{port}/getMe", "POST")
    finally:
        await client.shutdown()
        server.close()


async def test_a_closed_port_is_a_network_error_and_shutdown_is_final() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = AiohttpRequest(1)
    await client.initialize()
    with pytest.raises(NetworkError, match="aiohttp"):
        await client.do_request(f"http://127.0.0.1:{port}/getMe", "POST")
    await client.shutdown()
    with pytest.raises(RuntimeError, match="not initialized"):
        await client.do_request(f"http://127.0.0.1:{port}/getMe", "POST")
    with pytest.raises(ValueError, match="pool_size"):
        AiohttpRequest(0)
