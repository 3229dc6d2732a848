"""Bad input never gives a 500: each refusal is its own 4xx with a JSON error; headers,
rate limit, body limit, static files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from webkit import blank_png, make_config, png_header, sample

from web.app import create_app

BODY_LIMIT = 20 * 1024 * 1024
RATE = 4


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    data = tmp_path_factory.mktemp("limits")
    config = make_config(
        data,
        f"sqlite:///{data / 'digits.sqlite3'}",
        rate_limit_per_minute=RATE,
        max_body_bytes=BODY_LIMIT,
    )
    application = create_app(config)
    with TestClient(application):  # runs the lifespan for the clients below
        yield application


_addresses = iter(range(1, 10_000))


def _client(app: object) -> TestClient:
    """A client from an address of its own, so that each test has its own rate budget."""
    return TestClient(app, client=(f"10.0.0.{next(_addresses)}", 40000))  # type: ignore[arg-type]


def _upload(client: TestClient, data: bytes, name: str = "x.jpg", kind: str = "image/jpeg"):
    return client.post("/api/read", files={"file": (name, data, kind)})


@pytest.mark.parametrize(
    ("name", "data", "status", "words"),
    [
        ("notes.txt", b"these are not digits\n" * 20, 415, "not a supported image"),
        ("cut.jpg", sample("sample01.jpg")[:3000], 422, "damaged or incomplete"),
        ("huge.png", png_header(30000, 30000), 413, "too large"),
        ("empty.jpg", b"", 422, "empty"),
        ("fake.pdf", b"%PDF-1.4\n" + b"garbage" * 50, 422, ""),
    ],
)
def test_bad_uploads_get_their_4xx(app: object, name: str, data: bytes, status: int, words: str):
    response = _upload(_client(app), data, name)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert words in response.json()["error"]


def test_a_declared_50_mb_body_is_refused_before_it_is_read(app: object) -> None:
    body = b"\0" * (50 * 1024 * 1024)
    response = _client(app).post(
        "/api/read", content=body, headers={"content-type": "multipart/form-data; boundary=x"}
    )
    assert response.status_code == 413
    assert response.json() == {"error": "The upload is too large: the limit is 20 MB."}


def test_a_streamed_body_is_cut_off_at_the_limit(app: object) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
        nonlocal sent
        for _ in range(50):
            sent += 1024 * 1024
            yield b"\0" * (1024 * 1024)

    response = _client(app).post(
        "/api/read", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"}
    )
    assert response.status_code == 413
    assert "too large" in response.json()["error"]


def test_rate_limit_per_client(app: object) -> None:
    client = _client(app)
    statuses = [_upload(client, blank_png(), "b.png", "image/png").status_code for _ in range(RATE)]
    assert statuses == [200] * RATE
    refused = _upload(client, blank_png(), "b.png", "image/png")
    assert refused.status_code == 429
    assert "Too many requests" in refused.json()["error"]
    assert int(refused.headers["retry-after"]) >= 1
    # Another client is not held up by this one.
    assert _upload(_client(app), blank_png(), "b.png", "image/png").status_code == 200


def test_security_headers_everywhere(app: object) -> None:
    client = _client(app)
    for path in ("/", "/static/app.js", "/healthz", "/api/nothing", "/admin/login"):
        headers = client.get(path).headers
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["x-frame-options"] == "DENY", path
        csp = headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert "script-src 'self';" in csp and "unsafe-inline" not in csp, path


def test_the_page_has_no_inline_script_and_is_small(app: object) -> None:
    client = _client(app)
    page = client.get("/")
    assert page.status_code == 200 and "browser" in page.headers["set-cookie"]
    html = page.text
    assert "<script>" not in html and " on" + "click=" not in html and "style=" not in html
    total = len(page.content) + sum(
        len(client.get(f"/static/{name}").content) for name in ("app.js", "style.css")
    )
    assert total < 200_000
    again = client.get(
        "/static/app.js", headers={"if-none-match": client.get("/static/app.js").headers["etag"]}
    )
    assert again.status_code == 304


@pytest.mark.parametrize(
    "path",
    [
        "/static/../config.py",
        "/static/%2e%2e/app.py",
        "/static/..%2fapp.py",
        "/static/",
        "/static/nothing.js",
        "/static/%2fetc%2fpasswd",
        "/etc/passwd",
    ],
)
def test_no_client_path_reaches_the_disk(app: object, path: str) -> None:
    response = _client(app).get(path)
    assert response.status_code == 404
    assert response.json()["error"]


def test_unknown_routes_and_methods_answer_json(app: object) -> None:
    client = _client(app)
    assert client.get("/api/read").status_code == 405
    assert client.get("/api/read").json()["error"] == "Method not allowed."
    assert client.delete("/").status_code == 405


def test_static_files_come_from_the_package(app: object) -> None:
    here = Path(__file__).resolve().parents[2] / "web" / "static"
    client = _client(app)
    for entry in here.iterdir():
        assert client.get(f"/static/{entry.name}").content == entry.read_bytes()


def test_a_malformed_multipart_body_is_a_4xx_with_an_error(app: object) -> None:
    response = _client(app).post(
        "/api/read",
        content=b"--x\r\nContent-Disposition: form-data; name=file; filename=a\r\n\r\nabc",
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert 400 <= response.status_code < 500
    assert response.json()["error"]


def test_too_many_pages_is_refused(app: object) -> None:
    from webkit import multi_page

    data = multi_page("PDF", *["sample06.jpg"] * 6)  # the limit is 5 pages
    response = _upload(_client(app), data, "long.pdf", "application/pdf")
    assert response.status_code == 413
    assert "pages" in response.json()["error"]
