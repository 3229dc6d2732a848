"""A fake Telegram Bot API server for end-to-end tests of the bot.

An aiohttp app on 127.0.0.1 (random port) speaking the subset of the Bot API the bot
uses, closely enough that python-telegram-bot's own HTTP client talks to it unchanged via
``base_url=fake.base_url`` and ``base_file_url=fake.base_file_url``. It keeps the whole
conversation as state, and has helpers to act as people: send a photo, a document or a
text, press an inline button, wait for the bot's reply.

Like the real server it refuses what Telegram refuses (callback_data over 64 bytes,
captions over 1024 characters, files over 20 MB through getFile, unknown methods), so a
bot that passes here does not trip over those limits in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

MAX_CALLBACK_DATA = 64
MAX_CAPTION = 1024
MAX_TEXT = 4096
MAX_DOWNLOAD = 20 * 1024 * 1024
_TAG = re.compile(r"<[^>]+>")
_JSON_FIELDS = {
    "reply_markup",
    "commands",
    "allowed_updates",
    "reply_parameters",
    "entities",
    "caption_entities",
    "link_preview_options",
    "scope",
}
_INT_FIELDS = {"chat_id", "message_id", "offset", "limit", "timeout", "reply_to_message_id"}


class ApiError(Exception):
    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


@dataclass(frozen=True)
class FakeUser:
    id: int
    first_name: str = "Test"
    username: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.username:
            data["username"] = self.username
        return data

    @property
    def chat(self) -> dict[str, Any]:
        return {"id": self.id, "type": "private", "first_name": self.first_name}


@dataclass
class Sent:
    """A message the bot sent (sendMessage, sendPhoto, sendDocument)."""

    method: str
    chat_id: int
    message_id: int
    message: dict[str, Any]  # as returned to the bot
    params: dict[str, Any]  # as the bot sent them (decoded)
    raw: str  # text or caption as sent (with HTML tags)
    text: str  # text or caption as a person sees it (tags stripped)
    file: bytes | None = None  # the uploaded photo or document
    file_name: str | None = None
    at: float = field(default_factory=time.monotonic)

    @property
    def reply_markup(self) -> dict[str, Any] | None:
        return self.params.get("reply_markup")

    @property
    def buttons(self) -> list[dict[str, Any]]:
        markup = self.reply_markup or {}
        return [b for row in markup.get("inline_keyboard", []) for b in row]


def _plain(text: str, parse_mode: str | None) -> str:
    if parse_mode and parse_mode.upper() == "HTML":
        return html.unescape(_TAG.sub("", text))
    return text


class FakeTelegram:
    """The server plus the conversation state; use ``async with FakeTelegram() as fake``."""

    def __init__(self, token: str = "123456:TEST-TOKEN", bot_id: int = 123456) -> None:
        self.token = token
        self.bot_user = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "Digits",
            "username": "digits_test_bot",
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = defaultdict(lambda: itertools.count(1))
        self._file_ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.sent: list[Sent] = []
        # Per chat: what the bot sent there, and the next of those to hand out (a wait is
        # then one look, not a scan of everything sent: 50 users wait at once in benchmarks).
        self._sent_to: dict[int, list[Sent]] = defaultdict(list)
        self._cursor: dict[int, int] = defaultdict(int)
        self.edits: list[tuple[str, dict[str, Any]]] = []
        self.callback_answers: dict[str, dict[str, Any]] = {}
        self.files: dict[str, tuple[str, str, bytes]] = {}  # file_id -> (unique, path, bytes)
        self._by_path: dict[str, bytes] = {}
        self.commands: list[dict[str, Any]] = []  # the default scope's
        self.commands_by_scope: dict[str, list[dict[str, Any]]] = {}
        self.webhook: dict[str, Any] | None = None
        self.calls: dict[str, int] = defaultdict(int)
        self.errors: list[tuple[str, str]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> FakeTelegram:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        if server is None:
            raise RuntimeError("the fake Bot API server did not start")
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # --- acting as people ----------------------------------------------------------------

    def add_file(self, data: bytes, suffix: str = "jpg") -> tuple[str, str]:
        """Make ``data`` downloadable; returns (file_id, file_unique_id)."""
        n = next(self._file_ids)
        file_id, unique = f"FILE{n:06d}-{len(data)}", f"U{n:06d}"
        path = f"documents/file_{n}.{suffix}"
        self.files[file_id] = (unique, path, bytes(data))
        self._by_path[path] = self.files[file_id][2]
        return file_id, unique

    async def _push(self, update: dict[str, Any]) -> dict[str, Any]:
        async with self._changed:
            update["update_id"] = next(self._update_ids)
            self._updates.append(update)
            self._changed.notify_all()
        return update

    def _user_message(self, user: FakeUser, **fields: Any) -> dict[str, Any]:
        message = {
            "message_id": next(self._message_ids[user.id]),
            "date": int(time.time()),
            "chat": user.chat,
            "from": user.as_dict(),
            **fields,
        }
        self.messages[(user.id, message["message_id"])] = message
        return message

    async def send_message_from(self, user: FakeUser, **fields: Any) -> dict[str, Any]:
        """Any message (``fields`` as in a Telegram Message); returns the message."""
        message = self._user_message(user, **fields)
        await self._push({"message": message})
        return message

    async def send_photo_from(
        self, user: FakeUser, data: bytes, *, width: int = 640, height: int = 480
    ) -> dict[str, Any]:
        """A compressed photo, as Telegram delivers it: several sizes, the largest last."""
        file_id, unique = self.add_file(data, "jpg")
        small_id, small_unique = self.add_file(data, "jpg")
        sizes = [
            {
                "file_id": small_id,
                "file_unique_id": small_unique,
                "width": max(1, width // 8),
                "height": max(1, height // 8),
                "file_size": len(data),
            },
            {
                "file_id": file_id,
                "file_unique_id": unique,
                "width": width,
                "height": height,
                "file_size": len(data),
            },
        ]
        return await self.send_message_from(user, photo=sizes)

    async def send_document_from(
        self,
        user: FakeUser,
        data: bytes,
        *,
        file_name: str = "scan.png",
        mime_type: str = "image/png",
        file_size: int | None = None,
    ) -> dict[str, Any]:
        """A file sent uncompressed; ``file_size`` may claim more than ``data`` holds."""
        file_id, unique = self.add_file(data, file_name.rsplit(".", 1)[-1] or "bin")
        document = {
            "file_id": file_id,
            "file_unique_id": unique,
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": len(data) if file_size is None else file_size,
        }
        return await self.send_message_from(user, document=document)

    async def send_text_from(
        self, user: FakeUser, text: str, *, reply_to: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            command = text.split()[0]
            fields["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        if reply_to is not None:
            fields["reply_to_message"] = reply_to
        return await self.send_message_from(user, **fields)

    async def send_sticker_from(self, user: FakeUser) -> dict[str, Any]:
        file_id, unique = self.add_file(b"RIFF0000WEBPVP8 ", "webp")
        sticker = {
            "file_id": file_id,
            "file_unique_id": unique,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "👍",
        }
        return await self.send_message_from(user, sticker=sticker)

    async def send_voice_from(self, user: FakeUser) -> dict[str, Any]:
        file_id, unique = self.add_file(b"OggS\x00fake", "ogg")
        voice = {"file_id": file_id, "file_unique_id": unique, "duration": 2}
        return await self.send_message_from(user, voice=voice)

    async def press_button(self, user: FakeUser, message: Sent, index: int) -> str:
        """Press the ``index``-th inline button of a bot message; returns the query id."""
        button = message.buttons[index]
        current = self.messages[(message.chat_id, message.message_id)]
        query_id = f"Q{next(self._update_ids)}-{user.id}"
        await self._push(
            {
                "callback_query": {
                    "id": query_id,
                    "from": user.as_dict(),
                    "chat_instance": f"ci{message.chat_id}",
                    "message": current,
                    "data": button["callback_data"],
                }
            }
        )
        return query_id

    # --- waiting for the bot -------------------------------------------------------------

    async def _wait(self, predicate: Any, timeout: float, what: str) -> Any:
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(predicate), timeout)
            except TimeoutError:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None
            return predicate()

    async def wait_for_reply(self, chat_id: int, timeout: float = 15.0) -> Sent:
        """The bot's next message to ``chat_id`` not yet handed out by this method."""

        sent = self._sent_to[chat_id]

        def ready() -> Sent | None:
            cursor = self._cursor[chat_id]
            return sent[cursor] if cursor < len(sent) else None

        found: Sent = await self._wait(ready, timeout, f"a reply to chat {chat_id}")
        self._cursor[chat_id] += 1
        return found

    async def wait_for_callback_answer(self, query_id: str, timeout: float = 15.0) -> dict:
        return await self._wait(
            lambda: self.callback_answers.get(query_id), timeout, f"an answer to {query_id}"
        )

    async def wait_for_edit(
        self, chat_id: int, message_id: int, method: str | None = None, timeout: float = 15.0
    ) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            for name, params in self.edits:
                same = params.get("chat_id") == chat_id and params.get("message_id") == message_id
                if same and (method is None or name == method):
                    return params
            return None

        return await self._wait(ready, timeout, f"an edit of message {message_id}")

    def replies_to(self, chat_id: int) -> list[Sent]:
        return [s for s in self.sent if s.chat_id == chat_id]

    async def no_reply(self, chat_id: int, seconds: float = 0.5) -> bool:
        """True when the bot sends nothing more to ``chat_id`` within ``seconds``."""
        try:
            await self.wait_for_reply(chat_id, timeout=seconds)
        except AssertionError:
            return True
        return False

    # --- HTTP ----------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, Any]]:
        params: dict[str, Any] = {}
        files: dict[str, Any] = {}
        if request.content_type == "application/json":
            params = await request.json()
            return params, files
        if request.method == "POST":
            form = await request.post()
        else:
            form = request.query
        for key, value in form.items():
            if isinstance(value, web.FileField):
                files[key] = (value.filename, value.file.read())
                continue
            value = str(value)
            if key in _INT_FIELDS:
                params[key] = int(value)
            elif key in _JSON_FIELDS:
                params[key] = json.loads(value)
            else:
                params[key] = value
        return params, files

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        self.calls[method] += 1
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        try:
            params, files = await self._params(request)
            result = await handler(params, files)
        except ApiError as exc:
            self.errors.append((method, exc.description))
            return web.json_response(
                {"ok": False, "error_code": exc.code, "description": exc.description},
                status=exc.code,
            )
        return web.json_response({"ok": True, "result": result})

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        data = self._by_path.get(request.match_info["path"])
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="application/octet-stream")

    # --- methods -------------------------------------------------------------------------

    async def _m_getMe(self, params: dict, files: dict) -> dict:
        return self.bot_user

    async def _m_deleteWebhook(self, params: dict, files: dict) -> bool:
        self.webhook = None
        return True

    async def _m_setWebhook(self, params: dict, files: dict) -> bool:
        url = params.get("url", "")
        if not url.startswith("https://"):
            raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided")
        self.webhook = dict(params)
        return True

    def take_update(self) -> dict[str, Any]:
        """Remove and return the oldest queued update (to deliver it by webhook)."""
        return self._updates.pop(0)

    async def _m_setMyCommands(self, params: dict, files: dict) -> bool:
        commands = params.get("commands") or []
        for c in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", c.get("command", "")):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(c.get("description", "")) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        scope = params.get("scope") or {"type": "default"}
        self.commands_by_scope[json.dumps(scope, sort_keys=True)] = commands
        if scope.get("type") == "default":
            self.commands = commands
        return True

    async def _m_getUpdates(self, params: dict, files: dict) -> list:
        offset = int(params.get("offset", 0) or 0)
        limit = int(params.get("limit", 100) or 100)
        timeout = float(params.get("timeout", 0) or 0)
        async with self._changed:
            if offset:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]

            def pending() -> list[dict[str, Any]]:
                return self._updates[:limit]

            if not pending() and timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait_for(pending), timeout)
            return pending()

    async def _m_getFile(self, params: dict, files: dict) -> dict:
        file_id = params.get("file_id", "")
        if file_id not in self.files:
            raise ApiError(400, "Bad Request: invalid file_id")
        unique, path, data = self.files[file_id]
        claimed = int(file_id.rsplit("-", 1)[-1])
        if len(data) > MAX_DOWNLOAD or claimed > MAX_DOWNLOAD:
            raise ApiError(400, "Bad Request: file is too big")
        return {
            "file_id": file_id,
            "file_unique_id": unique,
            "file_size": len(data),
            "file_path": path,
        }

    def _check_markup(self, params: dict) -> None:
        markup = params.get("reply_markup")
        if not markup:
            return
        for row in markup.get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")

    def _chat(self, params: dict) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int):
            raise ApiError(400, "Bad Request: chat not found")
        return {"id": chat_id, "type": "private" if chat_id > 0 else "group"}

    def _reply_to(self, params: dict, chat_id: int) -> dict[str, Any] | None:
        reply = params.get("reply_parameters") or {}
        message_id = reply.get("message_id") or params.get("reply_to_message_id")
        if message_id is None:
            return None
        found = self.messages.get((chat_id, int(message_id)))
        if found is None and not reply.get("allow_sending_without_reply"):
            raise ApiError(400, "Bad Request: message to be replied not found")
        return found

    async def _record(
        self,
        method: str,
        params: dict,
        raw: str,
        extra: dict[str, Any],
        upload: tuple[str | None, bytes] | None = None,
    ) -> dict:
        self._check_markup(params)
        chat = self._chat(params)
        parse_mode = params.get("parse_mode")
        plain = _plain(raw, parse_mode)
        async with self._changed:
            message: dict[str, Any] = {
                "message_id": next(self._message_ids[chat["id"]]),
                "date": int(time.time()),
                "chat": chat,
                "from": self.bot_user,
                **extra,
            }
            reply_to = self._reply_to(params, chat["id"])
            if reply_to is not None:
                message["reply_to_message"] = reply_to
            markup = params.get("reply_markup")
            if markup and "inline_keyboard" in markup:
                message["reply_markup"] = markup
            self.messages[(chat["id"], message["message_id"])] = message
            sent = Sent(
                method=method,
                chat_id=chat["id"],
                message_id=message["message_id"],
                message=message,
                params=params,
                raw=raw,
                text=plain,
                file=upload[1] if upload else None,
                file_name=upload[0] if upload else None,
            )
            self.sent.append(sent)
            self._sent_to[chat["id"]].append(sent)
            self._changed.notify_all()
        return message

    async def _m_sendMessage(self, params: dict, files: dict) -> dict:
        raw = params.get("text", "")
        plain = _plain(raw, params.get("parse_mode"))
        if not 1 <= len(plain) <= MAX_TEXT:
            raise ApiError(400, "Bad Request: message text is empty or too long")
        return await self._record("sendMessage", params, raw, {"text": plain})

    def _upload(self, field_name: str, params: dict, files: dict) -> tuple[str | None, bytes]:
        value = params.get(field_name)
        if isinstance(value, str) and value.startswith("attach://"):
            field_name = value.removeprefix("attach://")
        if field_name not in files:
            raise ApiError(400, f"Bad Request: there is no {field_name} in the request")
        return files[field_name]

    async def _m_sendPhoto(self, params: dict, files: dict) -> dict:
        name, data = self._upload("photo", params, files)
        if not data:
            raise ApiError(400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
        raw = params.get("caption", "")
        plain = _plain(raw, params.get("parse_mode"))
        if len(plain) > MAX_CAPTION:
            raise ApiError(400, "Bad Request: message caption is too long")
        file_id, unique = self.add_file(data, "jpg")
        photo = [{"file_id": file_id, "file_unique_id": unique, "width": 1, "height": 1}]
        extra: dict[str, Any] = {"photo": photo}
        if plain:
            extra["caption"] = plain
        return await self._record("sendPhoto", params, raw, extra, (name, data))

    async def _m_sendDocument(self, params: dict, files: dict) -> dict:
        name, data = self._upload("document", params, files)
        raw = params.get("caption", "")
        plain = _plain(raw, params.get("parse_mode"))
        file_id, unique = self.add_file(data, "bin")
        document = {"file_id": file_id, "file_unique_id": unique, "file_name": name or "file"}
        extra: dict[str, Any] = {"document": document}
        if plain:
            extra["caption"] = plain
        return await self._record("sendDocument", params, raw, extra, (name, data))

    async def _m_sendChatAction(self, params: dict, files: dict) -> bool:
        self._chat(params)
        return True

    async def _edit(self, method: str, params: dict, change: dict[str, Any]) -> dict:
        self._check_markup(params)
        key = (params.get("chat_id"), params.get("message_id"))
        message = self.messages.get(key)  # type: ignore[arg-type]
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        async with self._changed:
            message.update(change)
            markup = params.get("reply_markup")
            if markup and markup.get("inline_keyboard"):
                message["reply_markup"] = markup
            else:
                message.pop("reply_markup", None)
            self.edits.append((method, params))
            self._changed.notify_all()
        return message

    async def _m_editMessageReplyMarkup(self, params: dict, files: dict) -> dict:
        return await self._edit("editMessageReplyMarkup", params, {})

    async def _m_editMessageCaption(self, params: dict, files: dict) -> dict:
        plain = _plain(params.get("caption", ""), params.get("parse_mode"))
        if len(plain) > MAX_CAPTION:
            raise ApiError(400, "Bad Request: message caption is too long")
        return await self._edit("editMessageCaption", params, {"caption": plain})

    async def _m_editMessageText(self, params: dict, files: dict) -> dict:
        plain = _plain(params.get("text", ""), params.get("parse_mode"))
        return await self._edit("editMessageText", params, {"text": plain})

    async def _m_answerCallbackQuery(self, params: dict, files: dict) -> bool:
        text = params.get("text", "")
        if len(text) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        async with self._changed:
            self.callback_answers[params["callback_query_id"]] = params
            self._changed.notify_all()
        return True
