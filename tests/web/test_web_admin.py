"""The operator's dashboard: login, CSRF, counts, charts, promote/roll back, retrain, export."""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from fastapi.testclient import TestClient
from webkit import ADMIN_PASSWORD, Web, blank_png, csrf_of, sample

import db
from vision.classifier import DEFAULT_MODEL_PATH
from web.app import create_app
from web.auth import ADMIN_COOKIE

PNG = b"\x89PNG\r\n\x1a\n"


def login(client: TestClient, password: str = ADMIN_PASSWORD) -> str:
    """Log in through the form; the dashboard's CSRF token."""
    token = csrf_of(client.get("/admin/login").text)
    response = client.post(
        "/admin/login", data={"password": password, "csrf": token}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    page = client.get("/admin")
    assert page.status_code == 200
    return csrf_of(page.text)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/admin/charts/accuracy.png"),
        ("get", "/admin/charts/confusion.png"),
        ("get", "/admin/retrain/status"),
        ("post", "/admin/retrain"),
        ("post", "/admin/export"),
        ("post", "/admin/models/activate"),
        ("post", "/admin/logout"),
    ],
)
def test_nothing_of_the_dashboard_without_login(client: TestClient, method: str, path: str):
    response = getattr(client, method)(path)
    assert response.status_code == 401
    assert "Log in" in response.json()["error"]


def test_the_dashboard_page_sends_strangers_to_the_login(client: TestClient) -> None:
    response = client.get("/admin", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/admin/login"
    client.cookies.set(ADMIN_COOKIE, "forged.value.sig", path="/admin")
    assert client.get("/admin", follow_redirects=False).status_code == 303


def test_login_checks_password_and_csrf(client: TestClient) -> None:
    token = csrf_of(client.get("/admin/login").text)
    wrong = client.post("/admin/login", data={"password": "guess", "csrf": token})
    assert wrong.status_code == 401 and "Wrong password" in wrong.text
    token = csrf_of(wrong.text)
    no_csrf = client.post("/admin/login", data={"password": ADMIN_PASSWORD})
    assert no_csrf.status_code == 403
    token = csrf_of(client.get("/admin/login").text)
    ok = client.post(
        "/admin/login", data={"password": ADMIN_PASSWORD, "csrf": token}, follow_redirects=False
    )
    assert ok.status_code == 303
    cookie = ok.headers["set-cookie"]
    assert f"{ADMIN_COOKIE}=" in cookie and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie and "Secure" not in cookie and "Path=/admin" in cookie
    assert client.get("/admin").status_code == 200


def test_the_session_cookie_is_secure_over_https(web: Web) -> None:
    client = TestClient(web.client.app, base_url="https://testserver")
    token = csrf_of(client.get("/admin/login").text)
    ok = client.post(
        "/admin/login", data={"password": ADMIN_PASSWORD, "csrf": token}, follow_redirects=False
    )
    assert ok.status_code == 303 and "Secure" in ok.headers["set-cookie"]


def test_forms_need_the_sessions_csrf_token(client: TestClient) -> None:
    login(client)
    for path in ("/admin/retrain", "/admin/export", "/admin/models/activate", "/admin/logout"):
        assert client.post(path, data={"csrf": "wrong"}).status_code == 403, path
        assert client.post(path).status_code == 403, path


def test_a_disabled_dashboard_refuses_every_password(tmp_path) -> None:
    from webkit import make_config

    config = make_config(tmp_path, f"sqlite:///{tmp_path / 'd.sqlite3'}", admin_password="")
    with TestClient(create_app(config)) as client:
        page = client.get("/admin/login")
        assert "dashboard is off" in page.text
        response = client.post("/admin/login", data={"password": "", "csrf": csrf_of(page.text)})
        assert response.status_code == 401


def test_counts_per_source_and_charts(web: Web, client: TestClient) -> None:
    def corrections(page: str, source: str) -> int:
        marker = f"id=corrections-{source}>"
        return int(page.split(marker, 1)[1].split("<", 1)[0])

    csrf = login(client)
    before = client.get("/admin").text
    assert csrf
    reading = client.post(
        "/api/read", files={"file": ("p.jpg", sample("sample05.jpg"), "image/jpeg")}
    ).json()
    client.post(f"/api/readings/{reading['reading_id']}/correction", json={"text": "7"})
    with web.sessions() as session, session.begin():  # a Telegram user's correction
        row = db.record_reading(
            session,
            telegram_id=4242,
            chat_id=4242,
            message_id=1,
            file_unique_id=None,
            image_sha256=None,
            image_path=None,
            width=10,
            height=10,
            model_version="v-bot",
            text="1",
            digits=[],
            elapsed_ms=1.0,
        )
        db.correct_reading(session, row.id, 4242, "2")
    after = client.get("/admin").text
    assert corrections(after, "web") == corrections(before, "web") + 1
    assert corrections(after, "bot") == corrections(before, "bot") + 1
    for chart in ("accuracy", "confusion"):
        image = client.get(f"/admin/charts/{chart}.png")
        assert image.status_code == 200 and image.content.startswith(PNG)
    assert client.get("/admin/charts/other.png").status_code == 404


def test_promote_and_roll_back(web: Web, client: TestClient) -> None:
    sha = db.sha256_hex(DEFAULT_MODEL_PATH.read_bytes())
    suffix = str(time.monotonic_ns())
    first, second = f"web-a-{suffix}", f"web-b-{suffix}"
    with web.sessions() as session, session.begin():
        for version in (first, second):
            db.register_model_version(
                session,
                version=version,
                path=str(DEFAULT_MODEL_PATH),
                sha256=sha,
                parent_version=None,
                data_summary={},
                metrics={"mnist_test_accuracy": 0.99, "user_holdout_accuracy": 0.9},
            )
    csrf = login(client)
    page = client.get("/admin").text
    assert f"<td>{first}</td><td>candidate</td>" in page and "99.00 %" in page

    for version in (first, second, first):  # promote, promote, roll back
        response = client.post(
            "/admin/models/activate",
            data={"csrf": csrf, "version": version},
            follow_redirects=False,
        )
        assert response.status_code == 303
        assert client.get("/healthz").json()["model"] == version
        with web.sessions() as session:
            assert db.active_model_version(session).version == version
    assert f"<td>{second}</td><td>retired</td>" in client.get("/admin").text
    missing = client.post("/admin/models/activate", data={"csrf": csrf, "version": "nope"})
    assert missing.status_code == 404


def test_retrain_runs_in_a_subprocess_and_reports(client: TestClient) -> None:
    csrf = login(client)
    response = client.post("/admin/retrain", data={"csrf": csrf}, follow_redirects=False)
    assert response.status_code == 303
    deadline = time.monotonic() + 30
    status = client.get("/admin/retrain/status").json()
    seen = set()
    while status["running"] and time.monotonic() < deadline:
        seen.add(status["progress"])
        time.sleep(0.05)
        status = client.get("/admin/retrain/status").json()
    assert status["running"] is False and status["ok"] is True
    assert status["progress"] == "epoch 2/2: 100%"  # the command's last line of progress
    assert seen - {None} <= {
        "retrain: loading the data",
        "epoch 1/2: 50%",
        "epoch 1/2: 100%",
        "epoch 2/2: 50%",
        "epoch 2/2: 100%",
    }
    assert status["outcome"] == "skipped; only 3 new labels (test)"
    assert "skipped; only 3 new labels (test)" in client.get("/admin").text


def test_export_downloads_a_zip_of_the_dataset(client: TestClient) -> None:
    reading = client.post(
        "/api/read", files={"file": ("p.jpg", sample("sample06.jpg"), "image/jpeg")}
    ).json()
    assert client.post(f"/api/readings/{reading['reading_id']}/confirm").status_code == 200
    client.post("/api/read", files={"file": ("b.png", blank_png(), "image/png")})
    csrf = login(client)
    response = client.post("/admin/export", data={"csrf": csrf})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert "attachment" in response.headers["content-disposition"]
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert "README.md" in names and any(n.startswith("csv/") for n in names)
    assert any(n.startswith("png/") and n.endswith(".png") for n in names)


def test_promoting_another_model_file_swaps_it_in_for_the_next_reading(
    web: Web, client: TestClient, tmp_path
) -> None:
    from vision.checkpoint import load_checkpoint, save_checkpoint

    version = f"web-swap-{time.monotonic_ns()}"
    body = load_checkpoint(DEFAULT_MODEL_PATH)
    body["version"] = version  # other bytes, same weights: a real load, the same readings
    path = tmp_path / f"{version}.pt"
    sha = save_checkpoint(path, body)
    with web.sessions() as session, session.begin():
        db.register_model_version(
            session,
            version=version,
            path=str(path),
            sha256=sha,
            parent_version=None,
            data_summary={},
            metrics={},
        )
    before = client.get("/healthz").json()["model"]
    csrf = login(client)
    client.post("/admin/models/activate", data={"csrf": csrf, "version": version})
    assert client.get("/healthz").json()["model"] == version != before
    reading = client.post(
        "/api/read", files={"file": ("p.jpg", sample("sample01.jpg"), "image/jpeg")}
    ).json()
    assert reading["model"] == version
    with web.sessions() as session:
        assert db.get_reading(session, reading["reading_id"]).model_version == version


def test_a_model_activated_elsewhere_is_picked_up_within_the_interval(tmp_path) -> None:
    """`digits models activate` (another process) reaches the running app by itself."""
    from webkit import make_config

    url = f"sqlite:///{tmp_path / 'd.sqlite3'}"
    config = make_config(tmp_path, url, model_check_interval_s=0.2)
    with TestClient(create_app(config)) as client:
        engine = db.make_engine(url)
        try:
            with db.make_session_factory(engine)() as session, session.begin():
                db.register_model_version(
                    session,
                    version="elsewhere-v1",
                    path=str(DEFAULT_MODEL_PATH),
                    sha256=db.sha256_hex(DEFAULT_MODEL_PATH.read_bytes()),
                    parent_version=None,
                    data_summary={},
                    metrics={},
                    status="active",
                )
        finally:
            engine.dispose()
        deadline = time.monotonic() + 20
        while client.get("/healthz").json()["model"] != "elsewhere-v1":
            assert time.monotonic() < deadline, "the app never swapped to the new model"
            time.sleep(0.1)
