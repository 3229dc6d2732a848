"""The operator's dashboard (/admin): models, live accuracy, confusions, retrain, export.

Every page and file here needs the login session; every form carries the session's CSRF
token (checked in constant time). Retraining and export run as ``digits`` subprocesses
through the bot's ``CommandRunner``: one at a time, never inside this process.
"""

from __future__ import annotations

import asyncio
import html
import logging
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException

import db
from db import dashboard
from serving import service
from web import charts
from web.app import Resources, res
from web.auth import LOGIN_CSRF_COOKIE, is_https, tokens_match

log = logging.getLogger(__name__)

router = APIRouter(prefix="/admin", include_in_schema=False)
CHART_DAYS = 60
_FORM_LIMITS = {"max_files": 0, "max_fields": 8, "max_part_size": 4096}


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
        '<link rel="stylesheet" href="/static/admin.css">'
        '<script src="/static/admin.js" defer></script></head>'
        f"<body>{body}</body></html>"
    )


def _csrf_field(token: str) -> str:
    return f'<input type="hidden" name="csrf" value="{html.escape(token)}">'


def _session(request: Request) -> str:
    """The logged-in session's CSRF token; 401 when not logged in."""
    csrf = res(request).admin.session_csrf(request)
    if csrf is None:
        raise HTTPException(401, "Log in at /admin/login first.")
    return csrf


async def _form(request: Request) -> dict[str, str]:
    """The posted form after its CSRF token is checked against the session's."""
    expected = _session(request)
    form = await request.form(**_FORM_LIMITS)
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    if not tokens_match(expected, values.get("csrf")):
        raise HTTPException(403, "The form is stale or forged (CSRF check failed): reload it.")
    return values


def _login_page(request: Request, error: str = "", status: int = 200) -> Response:
    import secrets

    token = secrets.token_urlsafe(24)
    message = f'<p class="error">{html.escape(error)}</p>' if error else ""
    disabled = (
        ""
        if res(request).admin.enabled
        else '<p class="error">The dashboard is off: set DIGITS_WEB_ADMIN_PASSWORD.</p>'
    )
    body = (
        "<main class=narrow><h1>digits · operator login</h1>"
        f"{disabled}{message}"
        '<form method="post" action="/admin/login">'
        f"{_csrf_field(token)}"
        '<label>Password <input type="password" name="password" id="password" '
        'autocomplete="current-password" required autofocus></label>'
        '<button type="submit" id="login">Log in</button></form></main>'
    )
    response = HTMLResponse(_page("digits · login", body), status_code=status)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
        path="/admin",
    )
    return response


@router.get("/login")
async def login_form(request: Request) -> Response:
    return _login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    r = res(request)
    form = await request.form(**_FORM_LIMITS)
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    if not tokens_match(request.cookies.get(LOGIN_CSRF_COOKIE), values.get("csrf")):
        return _login_page(request, "The form expired; try again.", 403)
    if not r.admin.password_ok(values.get("password", "")):
        await asyncio.sleep(0.5)  # slows guessing; the rate limit does the rest
        return _login_page(request, "Wrong password.", 401)
    response = RedirectResponse("/admin", status_code=303)
    r.admin.login(response, request)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/admin")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await _form(request)
    response = RedirectResponse("/admin/login", status_code=303)
    res(request).admin.logout(response)
    return response


def _pct(value: Any) -> str:
    return f"{100 * value:.2f} %" if isinstance(value, int | float) else "–"


def _overview(r: Resources) -> dict[str, Any]:
    with r.sessions() as session:
        since = datetime.now(UTC) - timedelta(days=CHART_DAYS)
        counts = dashboard.confusion(session)
        return {
            "sources": dashboard.source_counts(session),
            "daily": dashboard.daily_accuracy(session, since=since),
            "pairs": dashboard.confused_pairs(counts),
            "versions": [
                (
                    v.version,
                    str(v.status),
                    v.created_at,
                    v.parent_version,
                    dict(v.metrics or {}),
                )
                for v in db.list_model_versions(session)
            ],
            "runs": [
                (t.id, str(t.status), t.started_at, t.model_version, (t.metrics or {}), t.error)
                for t in db.list_training_runs(session, limit=5)
            ],
        }


def _retrain_html(state: dict[str, Any], running: bool) -> str:
    if running:
        since = time.time() - state.get("started", time.time())
        progress = f": {state['progress']}" if state.get("progress") else ""
        return html.escape(f"running for {since:.0f} s…{progress}")
    if "outcome" in state:
        return html.escape(state["outcome"])
    return "not run from here yet"


@router.get("")
async def dashboard_page(request: Request) -> Response:
    r = res(request)
    csrf = r.admin.session_csrf(request)
    if csrf is None:
        return RedirectResponse("/admin/login", status_code=303)
    data = await asyncio.to_thread(_overview, r)
    return HTMLResponse(
        _page("digits · operator", _dashboard_html(r, data, csrf)),
        headers={"cache-control": "no-store"},
    )


def _dashboard_html(r: Resources, data: dict[str, Any], csrf: str) -> str:
    """The dashboard's body: counts per source, model versions, runs, charts."""
    e = html.escape
    source_rows = "".join(
        f"<tr><td>{e(s.source)}</td><td class=n>{s.users}</td><td class=n>{s.readings}</td>"
        f"<td class=n>{s.confirmed}</td><td class=n id=corrections-{e(s.source)}>"
        f"{s.corrections}</td></tr>"
        for s in data["sources"]
    )
    active = r.models.current
    version_rows = []
    for version, status, created, parent, metrics in data["versions"]:
        action = ""
        if status in {"candidate", "retired"}:
            verb = "Promote" if status == "candidate" else "Roll back to"
            action = (
                '<form method="post" action="/admin/models/activate">'
                f'{_csrf_field(csrf)}<input type="hidden" name="version" value="{e(version)}">'
                f"<button>{verb}</button></form>"
            )
        version_rows.append(
            f"<tr class={e(status)}><td>{e(version)}</td><td>{e(status)}</td>"
            f"<td>{created:%Y-%m-%d %H:%M}</td><td>{e(parent or '–')}</td>"
            f"<td class=n>{_pct(metrics.get('mnist_test_accuracy'))}</td>"
            f"<td class=n>{_pct(metrics.get('user_holdout_accuracy'))}</td><td>{action}</td></tr>"
        )
    pairs = (
        "".join(f"<li>{t} read as {p}: {n}×</li>" for t, p, n in data["pairs"])
        or "<li>no corrected digits yet</li>"
    )
    daily = "".join(
        f"<tr><td>{d.day}</td><td>{e(d.model_version)}</td><td class=n>{d.answered}</td>"
        f"<td class=n>{_pct(d.accuracy)}</td><td class=n>{d.digits_labelled}</td></tr>"
        for d in reversed(data["daily"][-14:])
    )
    runs = "".join(
        f"<tr><td>{rid}</td><td>{e(status)}</td><td>{started:%Y-%m-%d %H:%M}</td>"
        f"<td>{e(version or '–')}</td><td>{e(str(metrics.get('reason') or error or ''))}</td></tr>"
        for rid, status, started, version, metrics, error in data["runs"]
    )
    running = r.retrain.running
    body = f"""
<header><h1>digits · operator</h1>
<form method="post" action="/admin/logout">{_csrf_field(csrf)}<button>Log out</button></form>
</header>
<main>
<section><h2>Users and answers by source</h2>
<table id="sources"><tr><th>source</th><th>users</th><th>readings</th><th>confirmed</th>
<th>corrections</th></tr>{source_rows}</table></section>
<section><h2>Models</h2><p>Reading with <strong id="active-model">{e(active.version)}</strong>
(this process).</p>
<table id="models"><tr><th>version</th><th>status</th><th>created</th><th>parent</th>
<th>MNIST test</th><th>users' holdout</th><th></th></tr>{"".join(version_rows)}</table>
<div class="actions">
<form method="post" action="/admin/retrain">{_csrf_field(csrf)}
<button id="retrain" {"disabled" if running else ""}>Retrain now</button></form>
<span>Retraining: <span id="retrain-state" data-running="{str(running).lower()}">
{_retrain_html(r.retrain_state, running)}</span></span>
<form method="post" action="/admin/export">{_csrf_field(csrf)}
<button id="export">Download the export (zip)</button></form></div>
<table><tr><th>run</th><th>status</th><th>started</th><th>model</th><th>note</th></tr>
{runs}</table></section>
<section><h2>Live accuracy</h2>
<img src="/admin/charts/accuracy.png" alt="accuracy per day and model version" width="700"
height="320">
<table><tr><th>day</th><th>model</th><th>answered</th><th>exact</th><th>digits labelled</th>
</tr>{daily}</table></section>
<section><h2>Most confused digits</h2>
<img src="/admin/charts/confusion.png" alt="confusion matrix" width="460" height="420">
<ol id="pairs">{pairs}</ol></section>
</main>"""
    return body


def _chart(r: Resources, which: str) -> bytes:
    with r.sessions() as session:
        if which == "accuracy":
            since = datetime.now(UTC) - timedelta(days=CHART_DAYS)
            return charts.accuracy_chart(dashboard.daily_accuracy(session, since=since))
        return charts.confusion_chart(dashboard.confusion(session))


@router.get("/charts/{which}.png")
async def chart(request: Request, which: str) -> Response:
    _session(request)
    if which not in {"accuracy", "confusion"}:
        raise HTTPException(404, "Not found.")
    png = await asyncio.to_thread(_chart, res(request), which)
    return Response(png, media_type="image/png", headers={"cache-control": "no-store"})


def _activate(r: Resources, version: str) -> None:
    with r.sessions() as session, session.begin():
        db.activate_model_version(session, version)


@router.post("/models/activate")
async def activate(request: Request) -> Response:
    form = await _form(request)
    r = res(request)
    version = form.get("version", "")
    try:
        await asyncio.to_thread(_activate, r, version)
    except db.ModelVersionNotFound:
        raise HTTPException(404, f"There is no model version {version!r}.") from None
    except db.InvalidTransition as exc:
        raise HTTPException(409, str(exc)) from None
    await r.models.refresh()  # this process swaps now; other workers within the interval
    return RedirectResponse("/admin", status_code=303)


async def _retrain(r: Resources) -> None:
    state = r.retrain_state

    async def started() -> None:
        state.clear()
        state["started"] = time.time()

    def output(line: str) -> None:
        state["progress"] = line[:200]

    try:
        outcome = await r.retrain.run(on_start=started, on_output=output)
    except Exception as exc:  # recorded for the page, never lost in a task
        log.exception("retraining from the dashboard failed")
        state["outcome"] = f"failed: {exc}"
        return
    if outcome is None:
        return
    state["outcome"] = ("" if outcome.ok else f"exit {outcome.returncode}: ") + outcome.describe()
    state["ok"] = outcome.ok
    state["seconds"] = round(outcome.seconds, 1)
    await r.models.refresh()


@router.post("/retrain")
async def retrain(request: Request) -> Response:
    await _form(request)
    r = res(request)
    if not r.retrain.running:
        r.spawn(_retrain(r), "retrain")
        await asyncio.sleep(0)  # let it take the runner's lock before the page is drawn
    return RedirectResponse("/admin", status_code=303)


@router.get("/retrain/status")
async def retrain_status(request: Request) -> Response:
    _session(request)
    r = res(request)
    state = r.retrain_state
    return JSONResponse(
        {
            "running": r.retrain.running,
            "seconds": round(time.time() - state["started"], 1) if "started" in state else None,
            "progress": state.get("progress"),
            "outcome": state.get("outcome"),
            "ok": state.get("ok"),
        },
        headers={"cache-control": "no-store"},
    )


@router.post("/export")
async def export(request: Request) -> Response:
    await _form(request)
    r = res(request)
    work = Path(tempfile.mkdtemp(prefix="digits-export-"))
    out = work / "digits-export"
    try:
        outcome = await r.export.run(str(out), "--formats", "idx,npz,png,csv")
        if outcome is None:
            raise HTTPException(409, "An export is already running; try again in a minute.")
        if not outcome.ok or not out.is_dir():
            raise HTTPException(500, f"The export failed: {outcome.describe()}")
        target = work / "digits-export.zip"
        await asyncio.to_thread(service.zip_folder, out, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    return FileResponse(
        target,
        media_type="application/zip",
        filename=f"digits-export-{stamp}.zip",
        background=BackgroundTask(shutil.rmtree, work, ignore_errors=True),
    )
