"""Load benchmark: many people sending photos and answering, against the fake Telegram.

    python tests/bot/bench_load.py [--users 50] [--photos 10]

The real bot runs as ``digits bot`` in its own process, configured only through the
environment (TELEGRAM_API_BASE_URL pointing at the fake server, a fresh data directory
with its SQLite database). Each simulated user sends a photo of a known number as soon
as the previous one is answered, then answers the reading: confirm (one tap) when it is
right, else fix and type the right number; every other photo is fixed regardless, so
corrections are exercised too. Afterwards the database is checked: every photo must have
a reply and every confirmation/correction must be stored ("lost" counts what is not).
Prints throughput (photos/s) and p50/p95 reply latency (photo sent -> reply received).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from fake_telegram import FakeTelegram, FakeUser  # noqa: E402
from images import clear_digits, number_image  # noqa: E402

import db  # noqa: E402
from bot import texts  # noqa: E402


async def user_session(
    fake: FakeTelegram,
    user: FakeUser,
    photos: list[tuple[str, bytes]],
    latencies: list[float],
    outcome: dict[str, list],
    timeout: float,
    answer: bool = True,
) -> None:
    loop = asyncio.get_running_loop()
    for index, (truth, data) in enumerate(photos):
        sent = loop.time()
        await fake.send_photo_from(user, data)
        try:
            reply = await fake.wait_for_reply(user.id, timeout=timeout)
        except AssertionError:
            outcome["lost_replies"].append((user.id, truth))
            continue
        latencies.append(loop.time() - sent)
        if reply.method != "sendPhoto":
            outcome["no_reading"].append((user.id, truth, reply.text))
            continue
        reading_id = int(texts.READING_TAG_RE.search(reply.text).group(1))
        read = reply.raw.split("<pre>")[1].split("</pre>")[0].split("\n")[0]
        outcome["read"].append(read == truth)
        if not answer:
            continue
        if read == truth and index % 2 == 0:
            await fake.press_button(user, reply, 0)
            ack = await fake.wait_for_reply(user.id, timeout=timeout)
            outcome["confirmed"].append((reading_id, ack.text == texts.CONFIRMED))
        else:
            await fake.press_button(user, reply, 1)
            prompt = await fake.wait_for_reply(user.id, timeout=timeout)
            await fake.send_text_from(user, truth, reply_to=prompt.message)
            ack = await fake.wait_for_reply(user.id, timeout=timeout)
            outcome["corrected"].append((reading_id, truth, ack.text.startswith("✏️")))


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) a running process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def check_database(url: str, outcome: dict[str, list]) -> tuple[int, int]:
    """(lost confirmations, lost corrections): answers acknowledged but not stored."""
    engine = db.make_engine(url)
    lost_confirm = lost_correct = 0
    try:
        with db.make_session_factory(engine)() as session:
            for reading_id, _acked in outcome["confirmed"]:
                row = db.get_reading(session, reading_id)
                if row is None or row.status != db.ReadingStatus.CONFIRMED:
                    lost_confirm += 1
            for reading_id, truth, _acked in outcome["corrected"]:
                row = db.get_reading(session, reading_id)
                if row is None or row.corrected_text != truth:
                    lost_correct += 1
    finally:
        engine.dispose()
    return lost_confirm, lost_correct


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--photos", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--verbose", action="store_true", help="the bot's debug log")
    parser.add_argument("--no-answers", action="store_true", help="photos only, no taps")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    clear_digits()
    workload = []
    for u in range(args.users):
        photos = []
        for p in range(args.photos):
            truth = "".join(rng.choice("0123456789") for _ in range(rng.randint(3, 6)))
            photos.append((truth, number_image(truth, seed=u * 1000 + p)))
        workload.append(photos)
    sizes = [len(d) for photos in workload for _, d in photos]
    print(f"{len(sizes)} photos, mean {statistics.mean(sizes) / 1024:.1f} KB", flush=True)

    usage = resource.getrusage(resource.RUSAGE_SELF)
    own_cpu_before = usage.ru_utime + usage.ru_stime
    async with FakeTelegram() as fake:
        data_dir = Path(tempfile.mkdtemp(prefix="digits-bench-"))
        env = {
            **os.environ,
            "TELEGRAM_BOT_TOKEN": fake.token,
            "TELEGRAM_API_BASE_URL": fake.base_url,
            "TELEGRAM_FILE_BASE_URL": fake.base_file_url,
            "DIGITS_DATA_DIR": str(data_dir),
            "DIGITS_RETRAIN_ENABLED": "false",
        }
        env.pop("DATABASE_URL", None)
        # BENCH_WRAPPER="script args": run the bot through a wrapper (e.g. a profiler).
        wrapper = os.environ.get("BENCH_WRAPPER", "").split()
        bot = await asyncio.create_subprocess_exec(
            sys.executable,
            *(wrapper or ["-m", "digits.cli", "bot"]),
            *(["--verbose"] if args.verbose else []),
            env=env,
            cwd=str(HERE.parents[1]),
        )
        try:
            deadline = time.monotonic() + 120
            while not fake.calls.get("getUpdates"):
                if bot.returncode is not None or time.monotonic() > deadline:
                    print("the bot did not start", file=sys.stderr)
                    return 1
                await asyncio.sleep(0.2)
            await asyncio.sleep(0.5)
            users = [FakeUser(500000 + i, f"User{i}") for i in range(args.users)]
            latencies: list[float] = []
            outcome: dict[str, list] = {
                k: [] for k in ("lost_replies", "no_reading", "read", "confirmed", "corrected")
            }
            bot_cpu_before = process_cpu(bot.pid)
            started = time.perf_counter()
            await asyncio.gather(
                *(
                    user_session(
                        fake, user, photos, latencies, outcome, args.timeout, not args.no_answers
                    )
                    for user, photos in zip(users, workload, strict=True)
                )
            )
            elapsed = time.perf_counter() - started
            bot_cpu_after = process_cpu(bot.pid)
        finally:
            if bot.returncode is None:
                bot.send_signal(signal.SIGINT)
                try:
                    await asyncio.wait_for(bot.wait(), 30)
                except TimeoutError:
                    bot.kill()
                    await bot.wait()

    own_cpu = resource.getrusage(resource.RUSAGE_SELF)
    lost_confirm, lost_correct = check_database(f"sqlite:///{data_dir / 'digits.sqlite3'}", outcome)
    total = args.users * args.photos
    lat = sorted(latencies)
    p50 = statistics.median(lat) if lat else float("nan")
    p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))] if lat else float("nan")
    answers = len(outcome["confirmed"]) + len(outcome["corrected"])
    print(f"users {args.users} x photos {args.photos} = {total} photos in {elapsed:.1f} s")
    print(
        f"throughput       {total / elapsed:.1f} photos/s (each photo also answered: "
        f"{answers} answers, {(total + answers) / elapsed:.1f} user actions/s)"
    )
    print(
        f"reply latency    p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
        f"max {lat[-1] * 1000:.0f} ms"
    )
    print(f"lost replies     {len(outcome['lost_replies'])}")
    print(
        f"lost corrections {lost_correct} (of {len(outcome['corrected'])}), "
        f"lost confirmations {lost_confirm} (of {len(outcome['confirmed'])})"
    )
    print(
        f"no digits found  {len(outcome['no_reading'])}; read right "
        f"{sum(outcome['read'])}/{len(outcome['read'])}"
    )
    bot_s = bot_cpu_after - bot_cpu_before
    own_s = own_cpu.ru_utime + own_cpu.ru_stime - own_cpu_before
    print(
        f"CPU              bot process {bot_s:.1f} s ({1000 * bot_s / total:.0f} ms per photo"
        f"{'' if args.no_answers else ' with its answer'}); fake Telegram + users {own_s:.1f} s; "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"data dir         {data_dir}")
    lost = len(outcome["lost_replies"]) + lost_correct + lost_confirm
    return 1 if lost else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
