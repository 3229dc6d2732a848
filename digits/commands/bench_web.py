"""`digits bench web`: 16 concurrent clients POST 1280×960 photos to a real `digits web`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path

from benchmarks.web import (
    default_photos,
    drive_clients,
    first_paint_bytes,
    photos_1280x960,
    reader_cpu_ms,
    web_server,
)
from digits.settings import Settings


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured duration")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--url", help="a running server instead of starting one")
    parser.add_argument(
        "--photos",
        nargs="*",
        type=Path,
        help="photos to send (default: the devsets' real 4:3 photos, else samples/*.jpg)",
    )
    parser.add_argument("--devsets-dir", type=Path, help="default: DIGITS_DEVSETS_DIR")
    parser.add_argument("--json", action="store_true", help="print only the JSON summary")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.photos:
        which, photos = "given photos", photos_1280x960(args.photos)
    else:
        which, photos = default_photos(args.devsets_dir or getattr(settings, "devsets_dir", None))
    if not photos:
        sys.stderr.write("digits bench web: no photos to send\n")
        return 2
    with contextlib.ExitStack() as stack:
        url, pid = args.url, None
        if not url:  # the rate limit off: every client is the same address
            limits = {"DIGITS_WEB_RATE_LIMIT_PER_MINUTE": "0"}
            server = stack.enter_context(web_server(args.workers, env=limits))
            url, pid = server.url, server.process.pid
        paint = first_paint_bytes(url)
        result = asyncio.run(
            drive_clients(url, photos, args.clients, args.warmup, args.seconds, pid)
        )
    # The box may be shared: CPU per reading, server and reader alone, does not depend on
    # what else runs, and says what the same code would do on idle cores.
    result["reader_cpu_ms_per_photo"] = reader_cpu_ms(photos)
    per_reading = (result["server_cpu_ms_per_reading"] or 0) + (
        result["client_cpu_ms_per_reading"] or 0
    )
    cpus = os.cpu_count() or 1
    result["readings_per_s_if_cpus_idle"] = (
        round(1000 * cpus / per_reading, 1) if per_reading else None
    )
    result["first_paint_bytes"] = sum(paint.values())
    result["first_paint_files"] = paint
    result["photos"] = len(photos)
    result["photo_set"] = which
    result["server_workers"] = args.workers if not args.url else None
    result["cpus"] = os.cpu_count()
    with contextlib.suppress(OSError):
        result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    if not args.json:
        print(
            f"{result['clients']} clients, {result['seconds']:.0f} s, {len(photos)} {which} at "
            f"1280x960: {result['readings_per_s']} readings/s, p50 {result['p50_ms']} ms, "
            f"p95 {result['p95_ms']} ms, errors {result['errors']} {result['statuses']}"
        )
        print(
            f"CPU per reading: server {result['server_cpu_ms_per_reading']} ms, load generator "
            f"{result['client_cpu_ms_per_reading']} ms, the reader alone "
            f"{result['reader_cpu_ms_per_photo']} ms; on {cpus} idle cores that is "
            f"{result['readings_per_s_if_cpus_idle']} readings/s"
        )
        print(f"first paint of /: {result['first_paint_bytes']} bytes {paint}")
    print(json.dumps(result))
    return 0 if result["errors"] == 0 else 1
