"""ASGI middleware that runs before any route: security headers, rate and body limits.

Pure ASGI (no BaseHTTPMiddleware) so that a refused upload is answered before its body
is read: the declared Content-Length is checked first, and the bytes actually streamed
are counted, so a client that lies or sends chunks is cut off at the limit too.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.ratelimit import RateLimiter

log = logging.getLogger(__name__)

# The page and the dashboard run only their own files: no inline script, no other origin.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# FastAPI's /docs page loads Swagger UI from its CDN with an inline start-up script.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The upload is too large: the limit is {_size(limit)}.")


def _size(n: int) -> str:
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{n} bytes"


async def send_json(send: Send, status: int, body: dict, headers: dict[str, str] | None = None):
    """A complete JSON response straight through ``send``."""
    payload = json.dumps(body).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"connection", b"close"),
    ]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


class Guard:
    """Headers on every response; rate and size limits on requests that carry uploads.

    ``rate_limited(path, method)`` says which requests count against a client's rate;
    the client is its address as the server sees it (run uvicorn with
    ``--proxy-headers`` behind a reverse proxy).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        limiter: RateLimiter,
        rate_limited: Callable[[str, str], bool],
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.limiter = limiter
        self.rate_limited = rate_limited

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        csp = DOCS_CSP if path.startswith(DOCS_PATHS) else CSP
        secure_headers = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", []), *secure_headers]}
            await send(message)

        if self.rate_limited(path, scope.get("method", "")):
            client = (scope.get("client") or ("unknown", 0))[0]
            wait = self.limiter.hit(client)
            if wait > 0:
                retry = str(max(1, math.ceil(wait)))
                await send_json(
                    send_with_headers,
                    429,
                    {"error": f"Too many requests: try again in {retry} s."},
                    {"retry-after": retry},
                )
                return
        limit = self.max_body_bytes
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not declared.isdigit():
                await send_json(send_with_headers, 400, {"error": "Bad Content-Length header."})
                return
            if int(declared) > limit:
                await send_json(send_with_headers, 413, {"error": BodyTooLarge(limit).detail})
                return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        try:
            await self.app(scope, counted_receive, send_with_headers)
        except BodyTooLarge as exc:
            if started:
                raise
            await send_json(send_with_headers, 413, {"error": exc.detail})
