"""`digits bench latency`: the reader's p50/p95 over the dev photos, idle and beside a busy core."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.latency import measure, photos, spin, stats
from digits.settings import Settings


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, help="checkpoint (default: shipped model)")
    parser.add_argument("--devsets-dir", type=Path)
    parser.add_argument(
        "--threads", type=int, default=None, help="the reader's threads (default: settings)"
    )
    parser.add_argument("--busy", type=int, default=1, help="busy-loop processes (default 1)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N photos")
    parser.add_argument("--rounds", type=int, default=1, help="passes over the photos")
    parser.add_argument("--json", action="store_true", help="one JSON object per row")


def run(args: argparse.Namespace, settings: Settings) -> int:
    import torch

    from vision.reader import DigitReader

    threads = args.threads if args.threads is not None else settings.torch_threads
    devsets = args.devsets_dir or settings.devsets_dir or Path("../shared/devsets")
    sets = photos(devsets, args.limit)
    model = args.model or settings.model_path
    readers = {
        f"{threads} thread(s)": DigitReader.load(model, threads=threads),
        f"PyTorch default ({torch.get_num_threads()})": DigitReader.load(model, threads=0),
    }
    blank = np.full((64, 64), 255, np.uint8)
    for reader in readers.values():  # first-call allocations are not what a server pays
        reader.read(blank)
    results: dict[str, dict[tuple[str, str], list[float]]] = {}
    results["idle"] = measure(readers, sets, args.rounds)
    context = multiprocessing.get_context("spawn")
    spinners = [context.Process(target=spin) for _ in range(args.busy)]
    for p in spinners:
        p.daemon = True
        p.start()
    try:
        time.sleep(0.5)
        results[f"busy x{args.busy}"] = measure(readers, sets, args.rounds)
    finally:
        for p in spinners:
            p.terminate()
        for p in spinners:
            p.join()
    _report(results, list(readers), list(sets), as_json=args.json)
    return 0


def _report(
    results: dict[str, dict[tuple[str, str], list[float]]],
    readers: list[str],
    sets: list[str],
    *,
    as_json: bool,
) -> None:
    idle, busy = list(results)
    if not as_json:
        print(f"{'reader':<24} {'set':<14} {idle:>18} {busy:>18}   busy/idle p50, p95")
    for reader in readers:
        for set_name in sets:
            a = stats(results[idle][(reader, set_name)])
            b = stats(results[busy][(reader, set_name)])
            r50, r95 = b["p50_ms"] / a["p50_ms"], b["p95_ms"] / a["p95_ms"]
            if as_json:
                n = len(results[idle][(reader, set_name)])
                row: dict[str, Any] = {"reader": reader, "set": set_name, "n": n}
                row |= {f"{idle}_{k}": v for k, v in a.items()}
                row |= {f"{busy}_{k}": v for k, v in b.items()}
                print(json.dumps(row | {"ratio_p50": r50, "ratio_p95": r95}))
                continue
            print(
                f"{reader:<24} {set_name:<14} "
                f"{a['p50_ms']:7.1f} /{a['p95_ms']:7.1f} ms "
                f"{b['p50_ms']:7.1f} /{b['p95_ms']:7.1f} ms   {r50:4.2f}x, {r95:4.2f}x"
            )
