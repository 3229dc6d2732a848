"""`digits bench db`: many writers recording readings and answers at once.

Each writer records readings (with digits and, by default, an original image), confirms
and corrects its own readings, one transaction per action, and keeps a ledger of what it
was told was committed. Afterwards the database is compared with the ledgers: rows lost,
duplicated, or not in the state last committed, and every error a caller saw.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.pool import QueuePool

from db.engine import make_engine, make_session_factory
from db.images import ImageStore
from db.migrations import upgrade
from db.models import Digit, Reading, User
from db.readings import confirm_reading, correct_reading, record_reading
from db.records import DigitRecord


@dataclass
class Expected:
    telegram_id: int
    chat_id: int
    message_id: int
    digits: int
    status: str = "pending"
    corrected_text: str | None = None
    labels: list[int | None] = field(default_factory=list)
    sha256: str | None = None


@dataclass
class Ledger:
    writer: int
    readings: dict[int, Expected] = field(default_factory=dict)
    ops: Counter[str] = field(default_factory=Counter)
    rows_written: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WriterJob:
    url: str
    images_root: str | None
    writer: int
    users: int
    start_at: float  # wall clock, so writers in other processes start together
    seconds: float
    seed: int


def _image(rng: random.Random) -> bytes:
    # A JPEG-looking blob of a few KB (content does not matter, only its hash).
    return b"\xff\xd8\xff\xe0" + rng.randbytes(rng.randint(2_000, 8_000))


def _digits(rng: random.Random, count: int) -> list[DigitRecord]:
    return [
        DigitRecord(
            position=i,
            line=0,
            number=i // 4,
            box=(10 + 30 * i, 12, 24, 40),
            crop=rng.randbytes(784),
            predicted=rng.randrange(10),
            confidence=rng.uniform(0.5, 1.0),
        )
        for i in range(count)
    ]


def writer(job: WriterJob) -> Ledger:
    """One writer's loop; every action is its own transaction, errors are counted."""
    rng = random.Random(job.seed * 1_000 + job.writer)
    ledger = Ledger(job.writer)
    engine = make_engine(job.url, poolclass=QueuePool, pool_size=1, max_overflow=0)
    factory = make_session_factory(engine)
    store = ImageStore(Path(job.images_root)) if job.images_root else None
    chat_id = 1_000 + job.writer
    seq = 0
    mine: list[int] = []
    delay = job.start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    deadline = time.monotonic() + job.seconds
    try:
        while time.monotonic() < deadline:
            choice = rng.random()
            action = "record" if choice < 0.6 or not mine else "confirm"
            if action == "confirm" and choice >= 0.8:
                action = "correct"
            began = time.perf_counter()
            try:
                if action == "record":
                    seq += 1
                    telegram_id = 10_000 + rng.randrange(job.users)
                    count = rng.randint(1, 8)
                    sha = path = None
                    if store is not None:
                        stored = store.put(_image(rng))
                        sha, path = stored.sha256, str(stored.path)
                    digits = _digits(rng, count)
                    with factory() as session, session.begin():
                        reading = record_reading(
                            session,
                            telegram_id=telegram_id,
                            chat_id=chat_id,
                            message_id=seq,
                            file_unique_id=f"w{job.writer}-{seq}",
                            image_sha256=sha,
                            image_path=path,
                            width=640,
                            height=480,
                            model_version="bench",
                            text="".join(str(d.predicted) for d in digits),
                            digits=digits,
                            elapsed_ms=rng.uniform(5, 50),
                        )
                        reading_id = reading.id
                    ledger.readings[reading_id] = Expected(
                        telegram_id, chat_id, seq, count, labels=[None] * count, sha256=sha
                    )
                    mine.append(reading_id)
                    ledger.rows_written += 1 + count
                else:
                    reading_id = rng.choice(mine)
                    expected = ledger.readings[reading_id]
                    if action == "confirm":
                        with factory() as session, session.begin():
                            reading = confirm_reading(session, reading_id, expected.telegram_id)
                            labels: list[int | None] = [d.predicted for d in reading.digits]
                        expected.status, expected.corrected_text = "confirmed", None
                        expected.labels = labels
                    else:
                        same = rng.random() < 0.7
                        n = expected.digits if same else expected.digits + rng.choice((-1, 1))
                        truth = [rng.randrange(10) for _ in range(max(n, 1))]
                        text = "".join(map(str, truth))
                        with factory() as session, session.begin():
                            result = correct_reading(
                                session, reading_id, expected.telegram_id, text
                            )
                        expected.corrected_text = text
                        if result.labelled:
                            expected.status, expected.labels = "corrected", list(truth)
                        else:
                            expected.status = "review"
                            expected.labels = [None] * expected.digits
                    ledger.rows_written += 1 + expected.digits
                ledger.ops[action] += 1
                ledger.latencies_ms.append((time.perf_counter() - began) * 1000)
            except Exception as exc:  # the benchmark counts what a caller would see
                ledger.ops["error"] += 1
                if len(ledger.errors) < 5:
                    ledger.errors.append(f"{action}: {type(exc).__name__}: {exc}"[:300])
    finally:
        engine.dispose()
    return ledger


@dataclass
class Result:
    backend: str
    mode: str
    writers: int
    seconds: float
    transactions: int
    readings: int
    answers: int
    rows_written: int
    lost: int
    duplicated: int
    unexpected: int
    mismatched: int
    missing_images: int
    errors: int
    p50_ms: float
    p99_ms: float
    error_samples: list[str]

    @property
    def ok(self) -> bool:
        bad = self.lost + self.duplicated + self.unexpected + self.mismatched
        return bad + self.missing_images + self.errors == 0


def verify(url: str, ledgers: list[Ledger], store: ImageStore | None) -> dict[str, int]:
    """Compare the database with what the writers were told was committed."""
    expected: dict[int, Expected] = {}
    for ledger in ledgers:
        expected.update(ledger.readings)
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            rows = {
                r.id: r
                for r in session.execute(
                    select(
                        Reading.id,
                        Reading.chat_id,
                        Reading.message_id,
                        Reading.status,
                        Reading.corrected_text,
                        Reading.image_sha256,
                        User.telegram_id,
                    ).join(User)
                )
            }
            duplicated = sum(
                n - 1
                for n in session.scalars(
                    select(func.count())
                    .select_from(Reading)
                    .group_by(Reading.chat_id, Reading.message_id)
                    .having(func.count() > 1)
                )
            )
            labels: dict[int, list[int | None]] = {}
            for reading_id, label in session.execute(
                select(Digit.reading_id, Digit.label).order_by(Digit.reading_id, Digit.position)
            ):
                labels.setdefault(reading_id, []).append(label)
    finally:
        engine.dispose()
    lost = [rid for rid in expected if rid not in rows]
    unexpected = [rid for rid in rows if rid not in expected]
    mismatched = 0
    for rid, exp in expected.items():
        row = rows.get(rid)
        if row is None:
            continue
        same = (
            row.telegram_id == exp.telegram_id
            and (row.chat_id, row.message_id) == (exp.chat_id, exp.message_id)
            and str(row.status) == exp.status
            and row.corrected_text == exp.corrected_text
            and labels.get(rid, []) == exp.labels
        )
        mismatched += not same
    missing_images = 0
    if store is not None:
        for sha in {e.sha256 for e in expected.values() if e.sha256}:
            try:
                store.read(sha)
            except OSError:
                missing_images += 1
            except LookupError:
                missing_images += 1
    return {
        "lost": len(lost),
        "duplicated": duplicated,
        "unexpected": len(unexpected),
        "mismatched": mismatched,
        "missing_images": missing_images,
    }


def bench(url: str, *, args: argparse.Namespace, backend: str, workdir: Path) -> Result:
    upgrade(url)
    images = None if args.no_images else workdir / f"images-{backend}"
    store = ImageStore(images) if images else None
    start_at = time.time() + (3.0 if args.mode == "process" else 0.5)
    root = str(images) if images else None
    jobs = [
        WriterJob(url, root, w, args.users, start_at, args.seconds, args.seed)
        for w in range(args.writers)
    ]
    if args.mode == "process":
        pool: cf.Executor = cf.ProcessPoolExecutor(
            args.writers, mp_context=multiprocessing.get_context("spawn")
        )
    else:
        pool = cf.ThreadPoolExecutor(args.writers)
    with pool:
        ledgers = list(pool.map(writer, jobs))
    checks = verify(url, ledgers, store)
    ops: Counter[str] = Counter()
    latencies: list[float] = []
    for ledger in ledgers:
        ops.update(ledger.ops)
        latencies.extend(ledger.latencies_ms)
    latencies.sort()
    return Result(
        backend=backend,
        mode=args.mode,
        writers=args.writers,
        seconds=args.seconds,
        transactions=ops["record"] + ops["confirm"] + ops["correct"],
        readings=ops["record"],
        answers=ops["confirm"] + ops["correct"],
        rows_written=sum(ledger.rows_written for ledger in ledgers),
        errors=ops["error"],
        p50_ms=statistics.median(latencies) if latencies else 0.0,
        p99_ms=latencies[int(0.99 * (len(latencies) - 1))] if latencies else 0.0,
        error_samples=[e for ledger in ledgers for e in ledger.errors][:10],
        **checks,
    )
