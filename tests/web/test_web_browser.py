"""A real browser against a real server: Debian's headless Chromium driven by Selenium.

``digits web`` runs as a subprocess on a free port; chromedriver comes from
/usr/bin/chromedriver, so nothing is downloaded. One server and one browser serve the
module; the tests run in order (draw, upload and correct, dashboard, console).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.actions import interaction
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.actions.pointer_input import PointerInput
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from strokes import number_strokes
from webkit import ADMIN_PASSWORD, REPO, SAMPLES

import db
from benchmarks.web import web_server

pytestmark = pytest.mark.slow  # a real browser against a real server

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CANVAS_W = 720
NATURAL_WIDTH = "return arguments[0].naturalWidth"


@dataclass
class Server:
    url: str
    data: Path

    def sessions(self):  # type: ignore[no-untyped-def]
        return db.make_session_factory(db.make_engine(f"sqlite:///{self.data / 'digits.sqlite3'}"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "DIGITS_WEB_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "DIGITS_VISION_WORKERS": "2",
    }
    with web_server(data=tmp_path_factory.mktemp("browser"), env=env) as started:
        yield Server(started.url, started.data)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            pytest.fail(
                f"{path} is missing: apt-get install chromium chromium-driver", pytrace=False
            )
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1000,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _errors(driver: webdriver.Chrome) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _wait(driver: webdriver.Chrome, condition, timeout: float = 30):  # type: ignore[no-untyped-def]
    # The page re-renders a reading when a newer one comes: an element found a moment ago
    # may be gone, which only means "not yet".
    wait = WebDriverWait(
        driver, timeout, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException]
    )
    return wait.until(lambda d: condition(d))


def _draw(driver: webdriver.Chrome, text: str) -> None:
    """Draw ``text`` on the canvas: strokes by mouse, pen and touch in turn."""
    canvas = driver.find_element(By.ID, "pad")
    rect = driver.execute_script("return arguments[0].getBoundingClientRect().toJSON()", canvas)
    scale = rect["width"] / CANVAS_W

    def offset(point: tuple[float, float]) -> tuple[int, int]:  # from the canvas's centre
        return (
            round(point[0] * scale - rect["width"] / 2),
            round(point[1] * scale - rect["height"] / 2),
        )

    kinds = [interaction.POINTER_MOUSE, interaction.POINTER_PEN, interaction.POINTER_TOUCH]
    for i, stroke in enumerate(number_strokes(text)):
        kind = kinds[i % len(kinds)]
        builder = ActionBuilder(driver, mouse=PointerInput(kind, f"{kind}-{i}"))
        pointer = builder.pointer_action
        pointer.move_to(canvas, *offset(stroke[0]))
        pointer.pointer_down()
        for point in stroke[1:]:
            pointer.move_to(canvas, *offset(point))
        pointer.pointer_up()
        builder.perform()


def _reading_value(driver: webdriver.Chrome) -> str | None:
    found = driver.find_elements(By.CSS_SELECTOR, "#results .reading .text")
    return found[0].get_attribute("value") if len(found) == 1 else None


def test_page_loads_small_and_clean(server: Server, browser: webdriver.Chrome) -> None:
    browser.get(server.url + "/")
    _wait(browser, lambda d: d.execute_script("return document.readyState") == "complete")
    transferred = browser.execute_script(
        "const nav = performance.getEntriesByType('navigation')[0];"
        "return nav.transferSize + performance.getEntriesByType('resource')"
        ".reduce((sum, e) => sum + e.transferSize, 0);"
    )
    assert 0 < transferred < 200_000, transferred
    assert browser.find_element(By.ID, "pad").is_displayed()
    assert _errors(browser) == []


def test_draw_a_two_digit_number_and_see_it_read(server: Server, browser: webdriver.Chrome) -> None:
    browser.get(server.url + "/")
    _draw(browser, "47")  # read when the pen is lifted, after a short pause
    _wait(browser, lambda d: _reading_value(d) == "47")
    boxes = browser.find_elements(By.CSS_SELECTOR, "#results .box")
    assert [b.text.rstrip("?") for b in boxes] == ["4", "7"]
    reading_id = int(
        browser.find_element(By.CSS_SELECTOR, "#results .reading").get_attribute("data-reading-id")
    )
    browser.find_element(By.CSS_SELECTOR, "#results .confirm").click()  # one click
    _wait(browser, lambda d: "confirmed" in d.find_element(By.CSS_SELECTOR, "#results .note").text)
    with server.sessions()() as session:
        stored = db.get_reading(session, reading_id)
        assert stored.text == "47" and stored.user.source == db.UserSource.WEB
        assert stored.status == db.ReadingStatus.CONFIRMED
        assert [d.label for d in stored.digits] == [4, 7]

    browser.find_element(By.ID, "undo").click()  # the 7 goes; the 4 is read again
    _wait(browser, lambda d: _reading_value(d) == "4")
    browser.find_element(By.ID, "clear").click()
    assert browser.find_elements(By.CSS_SELECTOR, "#results .reading") == []
    assert _errors(browser) == []


def test_upload_a_photo_see_boxes_and_correct_one_digit(
    server: Server, browser: webdriver.Chrome
) -> None:
    browser.get(server.url + "/")
    browser.find_element(By.ID, "file").send_keys(str(SAMPLES / "sample01.jpg"))
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .box")) == 18)
    picture = browser.find_element(By.CSS_SELECTOR, "#results .stage img")
    _wait(browser, lambda d: d.execute_script("return arguments[0].naturalWidth", picture) > 0)
    card = browser.find_element(By.CSS_SELECTOR, "#results .reading")
    reading_id = int(card.get_attribute("data-reading-id"))
    text = _reading_value(browser)
    assert text == "620992534\n163242942"

    first = browser.find_element(By.CSS_SELECTOR, "#results .box")
    first.click()
    browser.find_element(By.CSS_SELECTOR, "#results .keypad button[data-digit='5']").click()
    assert _reading_value(browser) == "520992534\n163242942"
    assert "changed" in first.get_attribute("class")
    browser.find_element(By.CSS_SELECTOR, "#results .save").click()
    _wait(browser, lambda d: "saved" in d.find_element(By.CSS_SELECTOR, "#results .note").text)

    with server.sessions()() as session:
        stored = db.get_reading(session, reading_id)
        assert stored.status == db.ReadingStatus.CORRECTED
        assert stored.corrected_text == "520992534\n163242942"
        assert stored.digits[0].predicted == 6 and stored.digits[0].label == 5
        assert stored.digits[0].label_source == db.LabelSource.CORRECTED
    assert _errors(browser) == []


def test_the_dashboard_counts_the_correction(server: Server, browser: webdriver.Chrome) -> None:
    browser.get(server.url + "/admin")
    _wait(browser, lambda d: d.current_url.endswith("/admin/login"))
    browser.find_element(By.ID, "password").send_keys(ADMIN_PASSWORD)
    browser.find_element(By.ID, "login").click()
    _wait(browser, lambda d: d.find_elements(By.ID, "corrections-web"))
    assert browser.find_element(By.ID, "corrections-web").text == "1"
    images = browser.find_elements(By.CSS_SELECTOR, "main img")
    assert len(images) == 2
    for image in images:
        _wait(
            browser, lambda d, i=image: d.execute_script("return arguments[0].naturalWidth", i) > 0
        )
    assert _errors(browser) == []


def test_a_declared_50_mb_upload_is_refused_before_its_body(server: Server) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /api/read HTTP/1.1\r\nHost: test\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\n"
            b"Content-Length: 52428800\r\n\r\n--x\r\n"
        )
        received = b""
        while not received.endswith(b"}"):  # the JSON body, whole, then the server closes
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
        answer = received.decode()
    assert answer.startswith("HTTP/1.1 413")
    assert '{"error": "The upload is too large: the limit is 20 MB."}' in answer


def test_the_benchmark_runs_against_the_server(server: Server) -> None:
    import asyncio

    from benchmarks.web import drive_clients, first_paint_bytes, photos_1280x960

    photos = photos_1280x960([SAMPLES / "sample03.jpg"])
    from vision.decode import image_size

    assert image_size(photos[0]) == (1280, 960)
    result = asyncio.run(drive_clients(server.url, photos, clients=2, warmup=0.0, seconds=1.5))
    assert result["requests"] >= 1 and result["errors"] == 0
    assert result["readings_per_s"] > 0 and result["p95_ms"] >= result["p50_ms"] > 0
    paint = first_paint_bytes(server.url)
    assert set(paint) >= {"/", "/static/app.js", "/static/style.css"}
    assert sum(paint.values()) < 200_000
