"""Helpers for the web tests: configuration, sample pictures, the app under test."""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from web.config import DIGITS, WebConfig

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"
ADMIN_PASSWORD = "correct horse battery staple"
# Stands in for `digits retrain` (minutes of training): prints a summary like it does.
FAKE_RETRAIN = (
    sys.executable,
    "-c",
    "import json, sys, time\n"
    "print('retrain: loading the data', file=sys.stderr, flush=True); time.sleep(0.2)\n"
    "for i in (1, 2):\n"
    "    print(f'epoch {i}/2: 50%', end='\\r', file=sys.stderr, flush=True); time.sleep(0.2)\n"
    "    print(f'epoch {i}/2: 100%', file=sys.stderr, flush=True)\n"
    "print(json.dumps({'status': 'skipped', 'reason': 'only 3 new labels (test)'}))",
)


@dataclass
class Web:
    client: TestClient
    config: WebConfig
    url: str
    sessions: sessionmaker[Session]


def make_config(data: Path, url: str, **over: object) -> WebConfig:
    options: dict[str, object] = {
        "db_url": url,
        "data_dir": data,
        "images_dir": data / "images",
        "model_path": None,
        "admin_password": ADMIN_PASSWORD,
        "cookie_secret": "test-secret",
        "max_body_bytes": 20 * 1024 * 1024,
        "rate_limit_per_minute": 0,
        "max_pdf_pages": 5,
        "model_check_interval_s": 0,
        "vision_workers": 2,
        "torch_threads": 1,
        "vision_processes": False,
        "subprocess_env": {
            "DATABASE_URL": url,
            "DIGITS_DATA_DIR": str(data),
            "DIGITS_EXPORT_SALT": "web-tests",
        },
        "retrain_argv": FAKE_RETRAIN,
        "export_argv": (*DIGITS, "export"),
    }
    options.update(over)
    return WebConfig(**options)  # type: ignore[arg-type]


def sample(name: str = "sample01.jpg") -> bytes:
    return (SAMPLES / name).read_bytes()


def expected_text(name: str) -> str:
    with (SAMPLES / "expected.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["file"] == name:
                return row["text"]
    raise KeyError(name)


def blank_png(width: int = 320, height: int = 200) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width), 255, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def multi_page(fmt: str, *names: str) -> bytes:
    """A PDF or multi-page TIFF with one sample photo per page."""
    pages = [Image.open(SAMPLES / n).convert("RGB") for n in names]
    buffer = io.BytesIO()
    pages[0].save(buffer, format=fmt, save_all=True, append_images=pages[1:], resolution=150)
    return buffer.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A valid PNG signature and header claiming ``width``×``height``, then a tiny IDAT."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def csrf_of(page: str) -> str:
    """The CSRF token in a dashboard form."""
    import re

    found = re.search(r'name="csrf" value="([^"]+)"', page)
    if not found:
        raise AssertionError("no CSRF field in the page")
    return found.group(1)
