"""The JSON API on SQLite and PostgreSQL: read, confirm, correct, forget, ownership."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from webkit import Web, blank_png, expected_text, multi_page, sample

import db
from web.auth import BROWSER_COOKIE


def _read(client: TestClient, data: bytes, name: str = "photo.jpg", kind: str = "image/jpeg"):
    return client.post("/api/read", files={"file": (name, data, kind)})


def test_read_a_photo_stores_a_web_reading(web: Web, client: TestClient) -> None:
    response = _read(client, sample("sample01.jpg"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"] == expected_text("sample01.jpg")
    assert body["model"] == client.get("/healthz").json()["model"]
    assert len(body["digits"]) == len(body["text"].replace("\n", "").replace(" ", ""))
    first = body["digits"][0]
    assert set(first) == {"label", "confidence", "box", "line", "number", "doubtful"}
    assert len(first["box"]) == 4 and all(isinstance(v, int) for v in first["box"])
    assert 0 < first["confidence"] <= 1 and body["elapsed_ms"] > 0
    assert BROWSER_COOKIE in response.cookies

    with web.sessions() as session:
        reading = db.get_reading(session, body["reading_id"])
        assert reading is not None and reading.text == body["text"]
        assert reading.user.source == db.UserSource.WEB and reading.user.telegram_id < 0
        assert db.ImageStore(web.config.images_dir).exists(reading.image_sha256)
        assert [d.predicted for d in reading.digits] == [d["label"] for d in body["digits"]]


def test_confirm_labels_every_digit(web: Web, client: TestClient) -> None:
    reading = _read(client, sample("sample03.jpg")).json()
    response = client.post(f"/api/readings/{reading['reading_id']}/confirm")
    assert response.status_code == 200, response.text
    stored = response.json()
    assert stored["status"] == "confirmed"
    assert [d["true_label"] for d in stored["digits"]] == [d["label"] for d in reading["digits"]]
    with web.sessions() as session:
        digits = db.get_reading(session, reading["reading_id"]).digits
        assert all(d.label_source == db.LabelSource.CONFIRMED for d in digits)


def test_correction_is_stored_like_the_bots(web: Web, client: TestClient) -> None:
    reading = _read(client, sample("sample04.jpg")).json()
    text = reading["text"]
    wrong = ("1" if text[0] != "1" else "2") + text[1:]
    response = client.post(
        f"/api/readings/{reading['reading_id']}/correction", json={"text": wrong}
    )
    assert response.status_code == 200, response.text
    stored = response.json()
    assert stored["status"] == "corrected" and stored["corrected_text"] == wrong
    assert stored["digits"][0]["true_label"] == int(wrong[0])
    with web.sessions() as session:
        labelled = db.labelled_digits(session, holdout_fraction=0.2, sources=["corrected"])
        assert any(
            d.reading_id == reading["reading_id"] and d.label == int(wrong[0]) for d in labelled
        )

    # Another digit count: kept for review, no single digit labelled.
    response = client.post(
        f"/api/readings/{reading['reading_id']}/correction", json={"text": "12 34"}
    )
    assert response.json()["status"] == "review"
    assert all(d["true_label"] is None for d in response.json()["digits"])


def test_a_picture_with_nothing_found_can_still_be_corrected(client: TestClient) -> None:
    body = _read(client, blank_png(), "blank.png", "image/png").json()
    assert body["text"] == "" and body["digits"] == []
    response = client.post(f"/api/readings/{body['reading_id']}/correction", json={"text": "42"})
    assert response.status_code == 200
    assert response.json()["corrected_text"] == "42" and response.json()["status"] == "review"


def test_only_the_browser_that_read_may_answer(client: TestClient) -> None:
    reading_id = _read(client, sample("sample05.jpg")).json()["reading_id"]
    mine = dict(client.cookies)

    client.cookies.clear()
    answer = client.post(f"/api/readings/{reading_id}/confirm")
    assert answer.status_code == 403 and "identity" in answer.json()["error"]

    _read(client, blank_png(), "b.png", "image/png")  # another browser, with a cookie now
    answer = client.post(f"/api/readings/{reading_id}/correction", json={"text": "1"})
    assert answer.status_code == 403 and "another browser" in answer.json()["error"]

    client.cookies.clear()
    client.cookies.set(BROWSER_COOKIE, mine[BROWSER_COOKIE].replace(".", ".x"))  # forged
    assert client.post(f"/api/readings/{reading_id}/confirm").status_code == 403

    client.cookies.clear()
    client.cookies.update(mine)
    assert client.post(f"/api/readings/{reading_id}/confirm").status_code == 200
    missing = client.post("/api/readings/987654321/confirm")
    assert missing.status_code == 404 and missing.json() == {
        "error": "There is no reading 987654321."
    }


def test_bad_corrections_and_requests_are_422_with_an_error(client: TestClient) -> None:
    reading_id = _read(client, sample("sample06.jpg")).json()["reading_id"]
    for payload in ({"text": "12a"}, {"text": "   "}, {"txt": "1"}, {"text": "1" * 3000}):
        answer = client.post(f"/api/readings/{reading_id}/correction", json=payload)
        assert answer.status_code == 422, payload
        assert answer.json()["error"], payload
    answer = client.post(
        f"/api/readings/{reading_id}/correction",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 422 and answer.json()["error"]
    assert client.post("/api/read", data={"other": "x"}).status_code == 422
    assert client.post("/api/readings/abc/confirm").status_code == 422


def test_pdf_and_tiff_give_one_reading_per_page(client: TestClient) -> None:
    for fmt, kind in (("PDF", "application/pdf"), ("TIFF", "image/tiff")):
        data = multi_page(fmt, "sample01.jpg", "sample03.jpg")
        response = _read(client, data, f"scan.{fmt.lower()}", kind)
        assert response.status_code == 200, response.text
        pages = response.json()["pages"]
        assert [p["page"] for p in pages] == [1, 2]
        assert len({p["reading_id"] for p in pages}) == 2
        if fmt == "TIFF":  # same pixels: the same text as the photos
            assert pages[0]["text"] == expected_text("sample01.jpg")
            assert pages[1]["text"] == expected_text("sample03.jpg")
        else:
            assert all(p["digits"] for p in pages)


def test_forget_deletes_everything_of_this_browser(web: Web, client: TestClient) -> None:
    first = _read(client, sample("sample02.jpg")).json()
    second = _read(client, blank_png(200, 100), "b.png", "image/png").json()
    with web.sessions() as session:
        sha = db.get_reading(session, first["reading_id"]).image_sha256
    store = db.ImageStore(web.config.images_dir)
    assert store.exists(sha)

    response = client.post("/api/forget")
    assert response.status_code == 200
    assert response.json()["readings_deleted"] == 2 and response.json()["images_deleted"] >= 1
    assert BROWSER_COOKIE not in client.cookies
    with web.sessions() as session:
        assert db.get_reading(session, first["reading_id"]) is None
        assert db.get_reading(session, second["reading_id"]) is None
    assert not store.exists(sha)
    # Nothing to forget: still fine.
    assert client.post("/api/forget").json()["readings_deleted"] == 0


def test_healthz_and_docs(client: TestClient) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.json()["model"]
    spec = client.get("/openapi.json").json()
    assert {"/api/read", "/api/readings/{reading_id}/confirm", "/healthz"} <= set(spec["paths"])
    assert not any(p.startswith("/admin") for p in spec["paths"])
    assert client.get("/docs").status_code == 200


def test_source_is_a_column_of_users(web: Web, client: TestClient) -> None:
    _read(client, blank_png(), "b.png", "image/png")
    with web.sessions() as session:
        sources = set(session.scalars(select(db.User.source)))
    assert db.UserSource.WEB in sources
