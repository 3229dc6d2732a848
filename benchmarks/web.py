"""`digits bench web`: concurrent clients POST 1280×960 photos to a real `digits web`.

Starts ``digits web`` in a subprocess on a free port (its own SQLite database in a
temporary data dir, rate limit off) unless ``--url`` names a running one, then runs
``--clients`` clients, each posting the next photo as soon as its last answer came, for
``--seconds``. Reports readings/s, latency percentiles, errors, and the bytes the first
paint of ``/`` transfers. The load generator runs on the same machine: its CPU counts
against the server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.cpu import tree_cpu

log = logging.getLogger(__name__)

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def photos_1280x960(paths: list[Path], *, four_by_three_only: bool = False) -> list[bytes]:
    """Each photo at Telegram's size (see `benchmarks.read.to_1280x960`);
    ``four_by_three_only`` leaves out other frames (cut-outs)."""
    from benchmarks.read import is_4_3, to_1280x960
    from vision.decode import decode_image

    images = (decode_image(path.read_bytes()) for path in paths)
    return [to_1280x960(img) for img in images if is_4_3(img) or not four_by_three_only]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class WebServer:
    """A running `digits web` process: where it answers, and what it keeps."""

    url: str
    process: subprocess.Popen[bytes]
    data: Path  # its DIGITS_DATA_DIR (database, images) and its working directory
    log: Path  # its stdout and stderr


@contextlib.contextmanager
def web_server(
    workers: int = 1, *, data: Path | None = None, env: dict[str, str] | None = None
) -> Iterator[WebServer]:
    """`digits web` on a free loopback port with its own SQLite database in `data` (a
    temporary folder, removed afterwards, when None), started in `data` so that no stray
    .env applies; `env` adds settings. Yields once it answers /healthz; stops it after."""
    own = data is None
    folder = Path(tempfile.mkdtemp(prefix="digits-bench-web-")) if data is None else data
    port = _free_port()
    environment = {
        **os.environ,
        "DIGITS_DATA_DIR": str(folder),
        "DATABASE_URL": "",
        "DIGITS_MODEL_CHECK_INTERVAL_S": "0",
        **(env or {}),
    }
    argv = [sys.executable, "-m", "digits.cli", "web", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--workers", str(workers)]
    log = folder / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, env=environment, cwd=folder, stdout=out, stderr=subprocess.STDOUT
        )
    server = WebServer(f"http://127.0.0.1:{port}", process, folder, log)
    try:
        _wait_healthy(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if own:
            shutil.rmtree(folder, ignore_errors=True)


def _wait_healthy(server: WebServer) -> None:
    import urllib.request

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"digits web exited {server.process.returncode}: {server.log.read_text()[-3000:]}"
            )
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{server.url}/healthz", timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.25)
    raise RuntimeError(f"digits web did not answer /healthz within 120 s: {server.log}")


def first_paint_bytes(url: str) -> dict[str, int]:
    """Bytes of ``/`` and of the files it links, headers included, as a browser fetches."""
    import httpx

    sizes: dict[str, int] = {}
    with httpx.Client(base_url=url) as client:
        page = client.get("/")

        def size(response: httpx.Response) -> int:
            head = sum(len(k) + len(v) + 4 for k, v in response.headers.raw) + 17
            return head + len(response.content)

        sizes["/"] = size(page)
        for ref in sorted(set(re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text))):
            sizes[ref] = size(client.get(ref))
    return sizes


async def drive_clients(
    url: str,
    photos: list[bytes],
    clients: int,
    warmup: float,
    seconds: float,
    server_pid: int | None = None,
) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    start = time.perf_counter()
    measure_from = start + warmup
    stop = measure_from + seconds
    cpu: dict[str, float] = {}

    async def account() -> None:  # CPU used by server and load generator while measured
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        cpu["server"] = -tree_cpu(server_pid)[1] if server_pid else 0.0
        cpu["client"] = -time.process_time()
        await asyncio.sleep(max(0.0, stop - time.perf_counter()))
        cpu["server"] += tree_cpu(server_pid)[1] if server_pid else 0.0
        cpu["client"] += time.process_time()

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60.0) as client:

        async def one_client(index: int) -> None:
            n = index
            while True:
                sent = time.perf_counter()
                if sent >= stop:
                    return
                photo = photos[n % len(photos)]
                n += clients
                try:
                    response = await client.post(
                        "/api/read", files={"file": ("photo.jpg", photo, "image/jpeg")}
                    )
                    status = str(response.status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                done = time.perf_counter()
                if sent >= measure_from and done <= stop:
                    latencies.append(done - sent)
                    statuses[status] += 1

        await asyncio.gather(account(), *(one_client(i) for i in range(clients)))
    ok = statuses.get("200", 0)
    ordered = sorted(latencies)

    def pct(p: float) -> float | None:
        if not ordered:
            return None
        return round(1000 * ordered[min(len(ordered) - 1, int(p * len(ordered)))], 1)

    return {
        "clients": clients,
        "seconds": seconds,
        "requests": len(latencies),
        "readings_per_s": round(ok / seconds, 1),
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "mean_ms": round(1000 * statistics.fmean(ordered), 1) if ordered else None,
        "errors": len(latencies) - ok,
        "statuses": dict(statuses),
        "server_cpu_ms_per_reading": round(1000 * cpu["server"] / ok, 1)
        if ok and server_pid
        else None,
        "client_cpu_ms_per_reading": round(1000 * cpu["client"] / ok, 1) if ok else None,
    }


def reader_cpu_ms(photos: list[bytes], rounds: int = 2) -> float:
    """CPU ms per photo of the reader alone, in this process, one thread (the floor)."""
    import torch

    from serving.service import read_image
    from vision.reader import DigitReader

    torch.set_num_threads(1)
    reader = DigitReader.load()
    read_image(reader, photos[0], 1, False)
    started = time.process_time()
    for _ in range(rounds):
        for photo in photos:
            read_image(reader, photo, 1, False)
    return round(1000 * (time.process_time() - started) / (rounds * len(photos)), 1)


def default_photos(devsets: Path | None) -> tuple[str, list[bytes]]:
    real = sorted((devsets / "photos" / "images").glob("*")) if devsets else []
    if real:
        return "real photos (devsets, 4:3 frames)", photos_1280x960(real, four_by_three_only=True)
    return "samples/*.jpg", photos_1280x960(sorted(SAMPLES.glob("*.jpg")))
