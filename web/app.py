"""The ASGI application: the page, the JSON API and (web.admin) the dashboard.

FastAPI on Starlette: the OpenAPI page (/docs) and request/response validation come from
the pydantic models below; everything else is plain Starlette. Resources (database
engine, model, vision pool, subprocess runners) are created in the lifespan and closed
at shutdown; the reader runs in the bot's vision pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import mimetypes
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib import resources as package_files
from typing import Annotated, Any

from fastapi import FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException

import db
from serving import service
from serving.intake import Recorded, Sender, read_and_record
from serving.model_swap import ModelManager
from serving.ratelimit import RateLimiter
from serving.startup import open_database_and_model
from serving.subprocesses import CommandRunner
from serving.vision_pool import VisionPool
from web.auth import AdminSessions, BrowserIdentity, user_key
from web.config import WebConfig
from web.guard import Guard

log = logging.getLogger(__name__)

# Requests that cost CPU or guard a secret count against the client's rate.
RATE_LIMITED = frozenset({"/api/read", "/admin/login"})


# --- the API's shapes (what /docs shows) ----------------------------------------------


class DigitOut(BaseModel):
    label: int = Field(description="the digit read, 0-9")
    confidence: float = Field(description="the classifier's probability for it")
    box: list[int] = Field(description="[x, y, w, h] in the picture's pixels")
    line: int = Field(description="which line of the picture, from 0")
    number: int = Field(description="which number within its line, from 0")
    doubtful: bool = Field(description="confidence under the reader's threshold")


class ReadingOut(BaseModel):
    reading_id: int
    text: str = Field(description="numbers on a line joined by spaces, lines by new lines")
    digits: list[DigitOut]
    elapsed_ms: float
    width: int
    height: int
    page: int = 1
    model: str


class PagesOut(BaseModel):
    pages: list[ReadingOut]
    elapsed_ms: float
    model: str


class StoredDigit(BaseModel):
    label: int = Field(description="the digit read")
    confidence: float
    box: list[int]
    line: int
    number: int
    true_label: int | None = Field(description="the answer's label for it, if known")


class StoredReading(BaseModel):
    reading_id: int
    status: str = Field(description="pending, confirmed, corrected or review")
    text: str
    corrected_text: str | None
    model_version: str | None
    digits: list[StoredDigit]


class CorrectionIn(BaseModel):
    text: str = Field(max_length=2000, description="the right number(s), digits and spaces")


class ErrorOut(BaseModel):
    error: str


class ForgetOut(BaseModel):
    readings_deleted: int
    digits_deleted: int
    images_deleted: int


class HealthOut(BaseModel):
    status: str
    model: str


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": what}
    for code, what in {
        403: "not this browser's reading",
        404: "no such reading",
        413: "the upload is too large",
        415: "not a picture, scan or PDF",
        422: "a damaged file or an invalid request",
        429: "too many requests",
    }.items()
}


# --- resources ------------------------------------------------------------------------


@dataclass
class Resources:
    """What the routes share; created in the lifespan, closed at shutdown."""

    config: WebConfig
    engine: Any
    sessions: sessionmaker[Session]
    images: db.ImageStore
    models: ModelManager
    pool: VisionPool
    identity: BrowserIdentity
    admin: AdminSessions
    retrain: CommandRunner
    export: CommandRunner
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    retrain_state: dict[str, Any] = field(default_factory=dict)

    def spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task


def res(request: Request) -> Resources:
    return request.app.state.resources


async def _refresh_models(models: ModelManager, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await models.refresh()
        except Exception:  # keep checking; the current model keeps reading
            log.exception("checking for a newly activated model failed")


def _static_files() -> dict[str, tuple[bytes, str, str]]:
    """The page's files, read once from the package: name -> (bytes, type, etag).

    Requests pick from this table by name, so no client path ever reaches the disk.
    """
    files: dict[str, tuple[bytes, str, str]] = {}
    root = package_files.files("web") / "static"
    for entry in root.iterdir():
        if entry.is_file() and not entry.name.startswith("."):
            data = entry.read_bytes()
            kind = mimetypes.guess_type(entry.name)[0] or "application/octet-stream"
            if kind.startswith("text/") or kind.endswith("javascript"):
                kind += "; charset=utf-8"
            etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
            files[entry.name] = (data, kind, etag)
    return files


def _reading_out(item: Recorded, version: str) -> ReadingOut:
    """One page read, as the API answers it."""
    reading = item.page.reading
    return ReadingOut(
        reading_id=item.reading_id,
        text=reading.text,
        digits=[
            DigitOut(
                label=d.label,
                confidence=round(float(d.confidence), 4),
                box=[int(v) for v in d.box],
                line=d.line,
                number=d.number,
                doubtful=bool(d.low_confidence),
            )
            for d in reading.digits
        ],
        elapsed_ms=round(float(reading.elapsed_ms), 2),
        width=int(reading.width),
        height=int(reading.height),
        page=item.page.page,
        model=version,
    )


def create_app(config: WebConfig) -> FastAPI:
    """The application for ``config``; nothing is opened until the lifespan starts."""
    secret = config.secret()
    static = _static_files()
    limiter = RateLimiter(config.rate_limit_per_minute)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = await open_database_and_model(
            config.db_url,
            model_path=config.model_path,
            data_dir=config.data_dir,
            torch_threads=config.torch_threads,
        )
        engine, sessions, models = opened.engine, opened.sessions, opened.models
        env = dict(config.subprocess_env)
        resources = Resources(
            config=config,
            engine=engine,
            sessions=sessions,
            images=db.ImageStore(config.images_dir),
            models=models,
            pool=VisionPool(config.vision_workers, config.torch_threads, config.vision_processes),
            identity=BrowserIdentity(secret),
            admin=AdminSessions(secret, config.admin_password),
            retrain=CommandRunner(config.retrain_argv, "retraining", env=env),
            export=CommandRunner(config.export_argv, "export", env=env, timeout_s=3600.0),
        )
        app.state.resources = resources
        try:
            # Worker processes (vision_processes) load the model before anyone waits on it.
            await resources.pool.warm_up(models.current)
            if config.model_check_interval_s > 0:
                interval = config.model_check_interval_s
                resources.spawn(_refresh_models(models, interval), "model-refresh")
            log.info("web app ready: model %s, database %s", models.current.version, engine.url)
            yield
        finally:
            for task in list(resources.background):
                task.cancel()
            await asyncio.gather(*resources.background, return_exceptions=True)
            await asyncio.to_thread(resources.pool.shutdown)
            await asyncio.to_thread(engine.dispose)

    app = FastAPI(
        title="digits",
        summary="Reads handwritten numbers in drawings, photos, scans and PDFs.",
        version="1",
        lifespan=lifespan,
    )
    app.add_middleware(
        Guard,
        max_body_bytes=config.max_body_bytes,
        limiter=limiter,
        rate_limited=lambda path, method: method == "POST" and path in RATE_LIMITED,
    )
    _error_handlers(app)
    _routes(app, static)
    from web.admin import router as admin_router

    app.include_router(admin_router)
    return app


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "Request refused."
        if exc.status_code == 404 and message == "Not Found":
            message = "Not found."
        if exc.status_code == 405:
            message = "Method not allowed."
        return JSONResponse({"error": message}, exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = str(first.get("msg", "invalid request"))
        return JSONResponse({"error": f"{where}: {message}" if where else message}, 422)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": "Internal error; it has been logged."}, 500)


def _image_error_status(exc: Exception) -> int:
    from vision.decode import ImageTooLarge, TooManyPages, UnsupportedFormat

    if isinstance(exc, UnsupportedFormat):
        return 415
    if isinstance(exc, ImageTooLarge | TooManyPages):
        return 413
    return 422


def _browser(request: Request) -> int:
    """The asking browser's number; 403 without a valid cookie."""
    number = res(request).identity.read(request)
    if number is None:
        raise HTTPException(403, "This browser has no identity cookie: read a picture first.")
    return number


def _stored(reading: db.Reading) -> StoredReading:
    return StoredReading(
        reading_id=reading.id,
        status=str(reading.status),
        text=reading.text,
        corrected_text=reading.corrected_text,
        model_version=reading.model_version,
        digits=[
            StoredDigit(
                label=d.predicted,
                confidence=round(d.confidence, 4),
                box=[d.box_x, d.box_y, d.box_w, d.box_h],
                line=d.line,
                number=d.number,
                true_label=d.label,
            )
            for d in reading.digits
        ],
    )


def _answer(sessions: sessionmaker[Session], reading_id: int, user: int, text: str | None):
    """Confirm (text None) or correct a reading in one transaction; the stored reading."""
    with sessions() as session, session.begin():
        if text is None:
            reading = db.confirm_reading(session, reading_id, user)
        else:
            reading = db.correct_reading(session, reading_id, user, text).reading
        return _stored(reading)


def _routes(app: FastAPI, static: dict[str, tuple[bytes, str, str]]) -> None:
    def serve(request: Request, name: str) -> Response:
        found = static.get(name)
        if found is None:
            raise HTTPException(404, "Not found.")
        data, kind, etag = found
        headers = {"etag": etag, "cache-control": "no-cache"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(data, media_type=kind, headers=headers)

    @app.get("/", include_in_schema=False)
    async def page(request: Request) -> Response:
        response = serve(request, "index.html")
        r = res(request)
        if r.identity.read(request) is None:
            r.identity.set(response, request, r.identity.new())
        return response

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon(request: Request) -> Response:
        return serve(request, "favicon.svg")

    @app.get("/static/{name}", include_in_schema=False)
    async def asset(request: Request, name: str) -> Response:
        return serve(request, name)

    @app.get("/healthz", response_model=HealthOut, tags=["service"])
    async def healthz(request: Request) -> HealthOut:
        """The service is up and reads with this model version."""
        return HealthOut(status="ok", model=res(request).models.current.version)

    @app.post(
        "/api/read",
        response_model=ReadingOut | PagesOut,
        responses=ERRORS,  # type: ignore[arg-type]
        tags=["reading"],
    )
    async def read(
        request: Request,
        response: Response,
        file: Annotated[UploadFile, File(description="a photo, scan, drawing or PDF")],
    ):
        """Read the handwritten numbers in a photo, scan, drawing or PDF.

        The reading is stored for this browser (a cookie is set if it has none), so it
        can be confirmed or corrected. A PDF or multi-page TIFF gives one reading per
        page under ``pages``.
        """
        from vision.decode import ImageError, sniff_format

        r = res(request)
        data = await file.read()
        if not data:
            raise HTTPException(422, "The file is empty.")
        browser = r.identity.read(request)
        if browser is None:
            browser = r.identity.new()
            r.identity.set(response, request, browser)
        sender = Sender(user_key(browser), "web")
        loaded = r.models.current  # one model for the whole request, even across a swap
        try:
            recorded = await read_and_record(
                r.pool,
                loaded,
                r.sessions,
                r.images,
                data,
                sender,
                max_pages=r.config.max_pdf_pages,
                annotated=False,
            )
        except ImageError as exc:
            raise HTTPException(_image_error_status(exc), str(exc)) from None
        out = [_reading_out(item, loaded.version) for item in recorded]
        if sniff_format(data) in service.MULTI_PAGE:
            total = round(sum(p.elapsed_ms for p in out), 2)
            return PagesOut(pages=out, elapsed_ms=total, model=loaded.version)
        return out[0]

    async def answer(request: Request, reading_id: int, text: str | None) -> StoredReading:
        r = res(request)
        user = user_key(_browser(request))
        try:
            return await asyncio.to_thread(_answer, r.sessions, reading_id, user, text)
        except db.ReadingNotFound:
            raise HTTPException(404, f"There is no reading {reading_id}.") from None
        except db.NotYourReading:
            raise HTTPException(403, "That reading was made by another browser.") from None
        except (db.InvalidCorrection, db.InvalidInput) as exc:
            raise HTTPException(422, str(exc)) from None

    @app.post(
        "/api/readings/{reading_id}/confirm",
        response_model=StoredReading,
        responses=ERRORS,  # type: ignore[arg-type]
        tags=["reading"],
    )
    async def confirm(request: Request, reading_id: int) -> StoredReading:
        """The reading is right: every digit is labelled as read (feeds retraining)."""
        return await answer(request, reading_id, None)

    @app.post(
        "/api/readings/{reading_id}/correction",
        response_model=StoredReading,
        responses=ERRORS,  # type: ignore[arg-type]
        tags=["reading"],
    )
    async def correct(request: Request, reading_id: int, body: CorrectionIn) -> StoredReading:
        """The right text, typed: digits get their true labels when the counts match."""
        return await answer(request, reading_id, body.text)

    @app.post("/api/forget", response_model=ForgetOut, tags=["privacy"])
    async def forget(request: Request, response: Response) -> ForgetOut:
        """Delete everything this browser sent (readings, digits, pictures) and its cookie."""
        r = res(request)
        browser = r.identity.read(request)
        result, files = None, 0
        if browser is not None:
            result, files = await asyncio.to_thread(
                service.forget, r.sessions, r.images, user_key(browser)
            )
        r.identity.clear(response)
        return ForgetOut(
            readings_deleted=result.readings_deleted if result else 0,
            digits_deleted=result.digits_deleted if result else 0,
            images_deleted=files,
        )
