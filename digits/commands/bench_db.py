"""`digits bench db`: 16 concurrent writers against SQLite and PostgreSQL; rows lost or
duplicated, and rows/s."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from benchmarks.db import Result, bench
from digits.settings import Settings


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=30.0, help="per backend (default 30)")
    parser.add_argument("--writers", type=int, default=16, help="concurrent writers (16)")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--mode",
        choices=["thread", "process"],
        default="thread",
        help="writers as threads of one process (like one bot) or as separate processes",
    )
    parser.add_argument("--users", type=int, default=24, help="Telegram users shared by writers")
    parser.add_argument("--no-images", action="store_true", help="do not store original images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")


@contextlib.contextmanager
def _backend_url(backend: str, workdir: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'bench.sqlite3'}"
        return
    from benchmarks.pgserver import throwaway_postgres

    # durable: fsync on, as in production, so commits cost what they really cost
    with throwaway_postgres(durable=True) as server:
        yield server.create_database("bench")


def _print(result: Result) -> None:
    per_s = result.seconds or 1.0
    sys.stdout.write(
        f"{result.backend:<8} {result.mode:<7} writers={result.writers} {result.seconds:g}s: "
        f"{result.transactions / per_s:7.1f} tx/s, {result.rows_written / per_s:8.1f} rows/s "
        f"({result.readings} readings, {result.answers} confirmations/corrections, "
        f"{result.rows_written} rows), latency p50 {result.p50_ms:.1f} ms p99 "
        f"{result.p99_ms:.1f} ms | lost {result.lost}, duplicated {result.duplicated}, "
        f"unexpected {result.unexpected}, mismatched {result.mismatched}, missing images "
        f"{result.missing_images}, errors {result.errors} -> {'OK' if result.ok else 'FAIL'}\n"
    )
    for sample in result.error_samples:
        sys.stdout.write(f"    error: {sample}\n")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.writers < 1 or args.seconds <= 0:
        sys.stderr.write("--writers must be >= 1 and --seconds > 0\n")
        return 2
    logging.getLogger("alembic").setLevel(logging.WARNING)  # migration chatter
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="digits-bench-") as tmp:
        for backend in backends:
            workdir = Path(tmp) / backend
            workdir.mkdir()
            with _backend_url(backend, workdir) as url:
                result = bench(url, args=args, backend=backend, workdir=workdir)
            _print(result)
            results.append(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) | {"ok": r.ok} for r in results], indent=2))
    return 0 if all(r.ok for r in results) else 1
