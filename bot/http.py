"""The bot's HTTP client for the Bot API: aiohttp under python-telegram-bot's request API.

PTB's own client (httpx) costs the bot's process more CPU per request than reading the
photo costs the event loop: its pool is scanned in Python for every request, and headers
and bodies are parsed in Python. aiohttp parses in C and keeps its pool in a dict, so the
same two cores answer more photos a second (see BENCHMARKS.md, `digits bench bot`).
Errors map to PTB's own: a timeout to `TimedOut`, any other failure to `NetworkError`.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

log = logging.getLogger(__name__)


class AiohttpRequest(BaseRequest):
    """One connection pool (`pool_size` connections) for every request the bot makes."""

    def __init__(
        self,
        pool_size: int,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 5.0,
        write_timeout: float = 5.0,
        pool_timeout: float = 30.0,
        media_write_timeout: float = 20.0,
    ) -> None:
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, got {pool_size}")
        self._pool_size = pool_size
        self._timeouts = {
            "connect": connect_timeout,
            "read": read_timeout,
            "write": write_timeout,
            "pool": pool_timeout,
            "media_write": media_write_timeout,
        }
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._timeouts["read"]

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._pool_size, limit_per_host=0)
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": self.USER_AGENT}
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        params = request_data.json_parameters if request_data else None
        body: aiohttp.FormData | dict[str, str] | None = params
        if files:
            body = aiohttp.FormData()
            for name, value in (params or {}).items():
                body.add_field(name, value)
            for name, part in files.items():
                filename, content, *mimetype = part if isinstance(part, tuple) else (name, part)
                body.add_field(
                    name,
                    content,
                    filename=filename,
                    content_type=mimetype[0] if mimetype else "application/octet-stream",
                )
        write = self._pick(write_timeout, "media_write" if files else "write")
        read = self._pick(read_timeout, "read")
        pool, connect = self._pick(pool_timeout, "pool"), self._pick(connect_timeout, "connect")
        timeout = aiohttp.ClientTimeout(
            # Waiting for a free connection counts against `connect` in aiohttp.
            connect=None if pool is None or connect is None else pool + connect,
            sock_connect=connect,
            # aiohttp has no write timeout: an upload's reply may come that much later.
            sock_read=None if read is None or write is None else max(read, write),
        )
        try:
            async with self._session.request(method, url, data=body, timeout=timeout) as response:
                return response.status, await response.read()
        except TimeoutError as err:
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{err.__class__.__name__}: {err}") from err

    def _pick(self, value: Any, name: str) -> float | None:
        """A call's timeout (None: none), or this client's default where it left it unset."""
        if isinstance(value, type(BaseRequest.DEFAULT_NONE)):
            return self._timeouts[name]
        return None if value is None else float(value)
