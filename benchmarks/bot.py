"""`digits bench bot`: many people sending photos and answering, against a fake Telegram.

The real bot runs as ``digits bot`` in its own process, configured only through the
environment (TELEGRAM_API_BASE_URL pointing at the fake server, a fresh data directory
with its SQLite database). First one user alone sends photos one after another (the wait
a person has on a quiet bot); then each of ``--users`` simulated users sends a photo of a
known number (1280×960 JPEG, Telegram's size) as soon as the previous one is answered,
and answers a share of the readings: confirm (one tap) when it is right, else fix and
type the right number (every other answered photo is fixed regardless, so corrections
are exercised too). Afterwards the database is checked: every photo must have a reply
and every confirmation/correction must be stored ("lost" counts what is not).

``--variant K=V,K=V`` (repeatable) runs the whole benchmark once per set of settings, one
after the other in this command, to compare them side by side; ``--bot-root DIR`` runs
another checkout's bot (old code against new), and so does ``BOT_ROOT=DIR`` in a variant
(``--variant BOT_ROOT=/tmp/old --variant ''``: the old bot, then this one).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.cpu import tree_cpu

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Outcome:
    """What the simulated users saw and did."""

    latencies: list[float] = field(default_factory=list)
    lost_replies: list[tuple[int, str]] = field(default_factory=list)
    no_reading: list[tuple[int, str, str]] = field(default_factory=list)
    read: list[bool] = field(default_factory=list)
    confirmed: list[tuple[int, bool]] = field(default_factory=list)
    corrected: list[tuple[int, str, bool]] = field(default_factory=list)


async def user_session(
    fake: Any,
    user: Any,
    photos: list[tuple[str, bytes]],
    outcome: Outcome,
    timeout: float,
    answer_share: float,
    rng: random.Random,
) -> None:
    from bot import texts

    loop = asyncio.get_running_loop()
    answered = 0
    for truth, data in photos:
        sent = loop.time()
        await fake.send_photo_from(user, data, width=1280, height=960)
        try:
            reply = await fake.wait_for_reply(user.id, timeout=timeout)
        except AssertionError:
            outcome.lost_replies.append((user.id, truth))
            continue
        outcome.latencies.append(loop.time() - sent)
        if reply.method != "sendPhoto":
            outcome.no_reading.append((user.id, truth, reply.text))
            continue
        found = texts.READING_TAG_RE.search(reply.text)
        if found is None:
            outcome.no_reading.append((user.id, truth, reply.text))
            continue
        reading_id = int(found.group(1))
        read = reply.raw.split("<pre>")[1].split("</pre>")[0].split("\n")[0]
        outcome.read.append(read == truth)
        if rng.random() >= answer_share:
            continue
        answered += 1
        if read == truth and answered % 2 == 1:
            await fake.press_button(user, reply, 0)
            ack = await fake.wait_for_reply(user.id, timeout=timeout)
            outcome.confirmed.append((reading_id, ack.text == texts.CONFIRMED))
        else:
            await fake.press_button(user, reply, 1)
            prompt = await fake.wait_for_reply(user.id, timeout=timeout)
            await fake.send_text_from(user, truth, reply_to=prompt.message)
            ack = await fake.wait_for_reply(user.id, timeout=timeout)
            outcome.corrected.append((reading_id, truth, ack.text.startswith("✏️")))


def check_database(url: str, outcome: Outcome) -> tuple[int, int]:
    """(lost confirmations, lost corrections): answers acknowledged but not stored."""
    import db

    engine = db.make_engine(url)
    lost_confirm = lost_correct = 0
    try:
        with db.make_session_factory(engine)() as session:
            for reading_id, _acked in outcome.confirmed:
                row = db.get_reading(session, reading_id)
                if row is None or row.status != db.ReadingStatus.CONFIRMED:
                    lost_confirm += 1
            for reading_id, truth, _acked in outcome.corrected:
                row = db.get_reading(session, reading_id)
                if row is None or row.corrected_text != truth:
                    lost_correct += 1
    finally:
        engine.dispose()
    return lost_confirm, lost_correct


def make_workload(users: int, photos: int, seed: int) -> list[list[tuple[str, bytes]]]:
    """Per user, (number, 1280×960 JPEG of it): the same pictures for every variant."""
    from benchmarks.images import number_photo

    rng = random.Random(seed)
    workload = []
    for u in range(users):
        mine = []
        for p in range(photos):
            truth = "".join(rng.choice("0123456789") for _ in range(rng.randint(3, 6)))
            mine.append((truth, number_photo(truth, seed=seed * 100003 + u * 1000 + p)))
        workload.append(mine)
    return workload


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Result:
    """One variant's numbers."""

    name: str
    photos: int
    elapsed: float
    outcome: Outcome
    alone: list[float]
    lost_confirm: int
    lost_correct: int
    bot_cpu: float
    main_cpu: float  # the bot's own process (without its worker processes)
    harness_cpu: float
    data_dir: Path

    @property
    def lost(self) -> int:
        return len(self.outcome.lost_replies) + self.lost_confirm + self.lost_correct

    def lines(self) -> list[str]:
        o, lat = self.outcome, self.outcome.latencies
        answers = len(o.confirmed) + len(o.corrected)
        rate = self.photos / self.elapsed
        return [
            f"[{self.name}]",
            f"  alone            p50 {1000 * _percentile(self.alone, 0.5):.0f} ms, "
            f"p95 {1000 * _percentile(self.alone, 0.95):.0f} ms ({len(self.alone)} photos)",
            f"  throughput       {rate:.1f} photos/s ({self.photos} in {self.elapsed:.1f} s, "
            f"{answers} answers: {(self.photos + answers) / self.elapsed:.1f} actions/s)",
            f"  reply latency    p50 {1000 * _percentile(lat, 0.5):.0f} ms, "
            f"p95 {1000 * _percentile(lat, 0.95):.0f} ms, max {1000 * max(lat or [0]):.0f} ms",
            f"  lost             replies {len(o.lost_replies)}, corrections {self.lost_correct} "
            f"(of {len(o.corrected)}), confirmations {self.lost_confirm} (of {len(o.confirmed)})",
            f"  read right       {sum(o.read)}/{len(o.read)}; no digits found {len(o.no_reading)}",
            f"  CPU              bot and its workers {self.bot_cpu:.1f} s "
            f"({1000 * self.bot_cpu / self.photos:.0f} ms per photo with its answers, "
            f"{self.bot_cpu / self.elapsed:.2f} cores; its main process "
            f"{1000 * self.main_cpu / self.photos:.0f} ms per photo); fake Telegram + users "
            f"{self.harness_cpu:.1f} s",
        ]


async def run_variant(
    name: str,
    extra_env: dict[str, str],
    workload: list[list[tuple[str, bytes]]],
    alone: list[tuple[str, bytes]],
    args: argparse.Namespace,
) -> Result | None:
    from benchmarks.fake_telegram import FakeTelegram, FakeUser

    extra_env = dict(extra_env)
    chosen = extra_env.pop("BOT_ROOT", None) or args.bot_root
    root = Path(chosen).resolve() if chosen else ROOT
    async with FakeTelegram() as fake:
        data_dir = Path(tempfile.mkdtemp(prefix="digits-bench-bot-"))
        env = {
            **os.environ,
            "PYTHONPATH": str(root),
            "TELEGRAM_BOT_TOKEN": fake.token,
            "TELEGRAM_API_BASE_URL": fake.base_url,
            "TELEGRAM_FILE_BASE_URL": fake.base_file_url,
            "DIGITS_DATA_DIR": str(data_dir),
            "DIGITS_RETRAIN_ENABLED": "false",
            # Generous: the benchmark measures the bot, not its per-user limit.
            "DIGITS_RATE_LIMIT_PER_MINUTE": "100000",
            **extra_env,
        }
        env.pop("DATABASE_URL", None)
        # BENCH_WRAPPER="script args": run the bot through a wrapper (e.g. a profiler).
        wrapper = os.environ.get("BENCH_WRAPPER", "").split()
        started_at = time.perf_counter()
        bot = await asyncio.create_subprocess_exec(
            sys.executable,
            *(wrapper or ["-m", "digits.cli", "bot"]),
            *(["--verbose"] if args.verbose else []),
            env=env,
            cwd=str(root),
        )
        try:
            deadline = time.monotonic() + 120
            while not fake.calls.get("getUpdates"):
                if bot.returncode is not None or time.monotonic() > deadline:
                    print(f"[{name}] the bot did not start", file=sys.stderr)
                    return None
                await asyncio.sleep(0.05)
            print(f"[{name}] bot polling after {time.perf_counter() - started_at:.1f} s")
            single = Outcome()
            await user_session(
                fake, FakeUser(400000, "Alone"), alone, single, args.timeout, 0.0, random.Random(0)
            )
            users = [FakeUser(500000 + i, f"User{i}") for i in range(args.users)]
            outcome = Outcome()
            own_before = _own_cpu()
            bot_before = tree_cpu(bot.pid)
            started = time.perf_counter()
            await asyncio.gather(
                *(
                    user_session(
                        fake,
                        user,
                        photos,
                        outcome,
                        args.timeout,
                        args.answer_share,
                        random.Random(args.seed * 7919 + i),
                    )
                    for i, (user, photos) in enumerate(zip(users, workload, strict=True))
                )
            )
            elapsed = time.perf_counter() - started
            bot_after = tree_cpu(bot.pid)
            main_cpu = bot_after[0] - bot_before[0]
            bot_cpu = bot_after[1] - bot_before[1]
            harness_cpu = _own_cpu() - own_before
        finally:
            if bot.returncode is None:
                bot.send_signal(signal.SIGINT)
                try:
                    await asyncio.wait_for(bot.wait(), 30)
                except TimeoutError:
                    bot.kill()
                    await bot.wait()
    lost_confirm, lost_correct = check_database(f"sqlite:///{data_dir / 'digits.sqlite3'}", outcome)
    return Result(
        name,
        args.users * args.photos,
        elapsed,
        outcome,
        single.latencies,
        lost_confirm,
        lost_correct,
        bot_cpu,
        main_cpu,
        harness_cpu,
        data_dir,
    )


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
