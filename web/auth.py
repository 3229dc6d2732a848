"""Who is asking: an anonymous browser (signed cookie) or the logged-in operator.

A browser is a random number signed with the app's secret; the database knows it as a
user with source "web" and ``telegram_id`` = minus that number (Telegram's ids are
positive, so the two never meet). The operator's session is a signed, timed cookie that
carries the session's CSRF token; every dashboard form posts that token back.
"""

from __future__ import annotations

import hmac
import secrets

from itsdangerous import BadSignature, Signer, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

BROWSER_COOKIE = "digits_browser"
ADMIN_COOKIE = "digits_admin"
LOGIN_CSRF_COOKIE = "digits_login_csrf"
BROWSER_MAX_AGE = 400 * 24 * 3600  # browsers cap cookies at 400 days
ADMIN_MAX_AGE = 12 * 3600
MAX_BROWSER_ID = 2**53 - 1  # exact in JavaScript and in a BIGINT, negated


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


class BrowserIdentity:
    """Signs and checks the anonymous browser cookie."""

    def __init__(self, secret: str) -> None:
        self._signer = Signer(secret, salt="digits.web.browser")

    def read(self, request: Request) -> int | None:
        """The browser's number, or None without a valid cookie."""
        raw = request.cookies.get(BROWSER_COOKIE)
        if not raw:
            return None
        try:
            value = self._signer.unsign(raw).decode()
        except BadSignature:
            return None
        if not value.isdigit():
            return None
        number = int(value)
        return number if 0 < number <= MAX_BROWSER_ID else None

    @staticmethod
    def new() -> int:
        return secrets.randbelow(MAX_BROWSER_ID) + 1

    def set(self, response: Response, request: Request, number: int) -> None:
        response.set_cookie(
            BROWSER_COOKIE,
            self._signer.sign(str(number)).decode(),
            max_age=BROWSER_MAX_AGE,
            httponly=True,
            samesite="lax",  # not sent with another site's POST; kept on links in
            secure=is_https(request),
            path="/",
        )

    @staticmethod
    def clear(response: Response) -> None:
        response.delete_cookie(BROWSER_COOKIE, path="/")


def user_key(browser: int) -> int:
    """The ``telegram_id`` the database stores this browser's user under."""
    return -browser


class AdminSessions:
    """The operator's login: password check, session cookie, CSRF tokens."""

    def __init__(self, secret: str, password: str) -> None:
        self._password = password
        self._serializer = URLSafeTimedSerializer(secret, salt="digits.web.admin")

    @property
    def enabled(self) -> bool:
        return bool(self._password)

    def password_ok(self, given: str) -> bool:
        if not self._password:
            return False
        return hmac.compare_digest(given.encode(), self._password.encode())

    def login(self, response: Response, request: Request) -> str:
        """Start a session; its CSRF token."""
        csrf = secrets.token_urlsafe(24)
        response.set_cookie(
            ADMIN_COOKIE,
            self._serializer.dumps({"csrf": csrf}),
            max_age=ADMIN_MAX_AGE,
            httponly=True,
            samesite="strict",
            secure=is_https(request),
            path="/admin",
        )
        return csrf

    def session_csrf(self, request: Request) -> str | None:
        """The logged-in session's CSRF token, or None when not logged in."""
        if not self._password:
            return None
        raw = request.cookies.get(ADMIN_COOKIE)
        if not raw:
            return None
        try:
            data = self._serializer.loads(raw, max_age=ADMIN_MAX_AGE)
        except BadSignature:
            return None
        csrf = data.get("csrf") if isinstance(data, dict) else None
        return csrf if isinstance(csrf, str) and csrf else None

    @staticmethod
    def logout(response: Response) -> None:
        response.delete_cookie(ADMIN_COOKIE, path="/admin")


def tokens_match(expected: str | None, given: str | None) -> bool:
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
