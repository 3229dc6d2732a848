"""`digits bench latency`: reader latency on the dev photos, idle and beside a busy core.

A library user's reader (`DigitReader.load().read(bytes)`, no thread settings of their
own) is timed with its own intra-op threads (`--threads`, one by default) against
PyTorch's default (one thread per core, what readers used before), photo by photo in
turn so that both see the same moments of a shared machine; first on an idle machine,
then with `--busy` processes each spinning a core. Prints p50/p95 per condition and the
busy/idle ratios (the aim: at most 1.5x).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np


def spin() -> None:
    """A busy loop: a neighbour holding one core."""
    while True:
        pass


def _time_read(reader: Any, data: bytes) -> float:
    start = time.perf_counter()
    reader.read(data)
    return (time.perf_counter() - start) * 1000.0


def photos(devsets_dir: Path, limit: int) -> dict[str, list[bytes]]:
    from benchmarks.read import as_1280x960, load_photos

    photos = load_photos(devsets_dir)
    if limit:
        photos = photos[:limit]
    whole = [p.path.read_bytes() for p in photos]
    big = [b for b in (as_1280x960(d) for d in whole) if b is not None]
    return {"real photos": whole, "real 1280x960": big}


def measure(
    readers: dict[str, Any], sets: dict[str, list[bytes]], rounds: int = 1
) -> dict[tuple[str, str], list[float]]:
    """Latencies (ms) per (reader name, set name), the readers taking turns per photo."""
    out: dict[tuple[str, str], list[float]] = {}
    for set_name, images in sets.items():
        for _ in range(rounds):
            for i, data in enumerate(images):
                names = list(readers)
                if i % 2:  # alternate who goes first: neither always follows the other
                    names.reverse()
                for name in names:
                    out.setdefault((name, set_name), []).append(_time_read(readers[name], data))
    return out


def stats(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values)
    return {"p50_ms": float(np.percentile(arr, 50)), "p95_ms": float(np.percentile(arr, 95))}
