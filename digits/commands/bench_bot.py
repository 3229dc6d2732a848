"""`digits bench bot`: 50 users × 10 photos through a fake Bot API to a real `digits bot`."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

from benchmarks.bot import make_workload, run_variant
from digits.settings import Settings


def _variant(raw: str) -> tuple[str, dict[str, str]]:
    env = {}
    for part in filter(None, raw.split(",")):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"a variant is K=V[,K=V...], got {raw!r}")
        env[key.strip()] = value.strip()
    return raw or "as configured", env


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--photos", type=int, default=10, help="photos per user")
    parser.add_argument("--alone", type=int, default=20, help="photos of the user alone first")
    parser.add_argument(
        "--answer-share", type=float, default=0.5, help="share of the readings answered"
    )
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--variant",
        type=_variant,
        action="append",
        metavar="K=V[,K=V]",
        help="bot settings for one run (repeat to compare; default: one run as configured)",
    )
    parser.add_argument("--bot-root", type=Path, help="run the bot of another checkout")
    parser.add_argument("--bot-log", action="store_true", help="the bot's debug log")


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        sys.stderr.write("digits bench bot needs aiohttp: pip install -e '.[dev]'\n")
        return 2
    from benchmarks import images
    from training.data.mnist import DEFAULT_DIR

    images.use_mnist(settings.mnist_dir or DEFAULT_DIR)
    args.verbose = args.bot_log
    t0 = time.perf_counter()
    workload = make_workload(args.users, args.photos, args.seed)
    alone = make_workload(1, args.alone, args.seed + 1)[0]
    sizes = [len(d) for photos in workload for _, d in photos]
    print(
        f"{len(sizes)} photos of 1280x960, mean {statistics.mean(sizes) / 1024:.0f} KB "
        f"(made in {time.perf_counter() - t0:.0f} s); {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    results = []
    for name, env in args.variant or [("as configured", {})]:
        result = asyncio.run(run_variant(name, env, workload, alone, args))
        if result is None:
            return 1
        results.append(result)
        print("\n".join(result.lines()), flush=True)
    if len(results) > 1:
        base = results[0]
        for r in results[1:]:
            ratio = (r.photos / r.elapsed) / (base.photos / base.elapsed)
            print(f"[{r.name}] / [{base.name}]: {ratio:.2f}x the photos/s")
    print(f"load average now {os.getloadavg()[0]:.1f}")
    return 1 if any(r.lost for r in results) else 0
