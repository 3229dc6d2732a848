"""`digits demo` (what `make run` runs): the product end to end on this machine.

1. evaluate the shipped model on MNIST test and the devsets (when present);
2. read the sample photos that ship in `samples/` and compare with their expected text;
3. start the bot on the embedded SQLite database when TELEGRAM_BOT_TOKEN is set,
   otherwise say how to get a token.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from digits.settings import Settings

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-bot", action="store_true", help="stop after reading the samples")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from digits.cli import main

    print("== 1/3 evaluating the shipped model ==", flush=True)
    code = main(["evaluate", "--out", "reports"])
    if code:
        return code
    samples = sorted(p for p in SAMPLES.glob("*") if p.suffix.lower() in {".png", ".jpg", ".pdf"})
    if samples:
        print("\n== 2/3 reading the sample photos in samples/ ==", flush=True)
        code = main(["read", "--annotate", "reports/annotated", *map(str, samples)])
        if code:
            return code
        expected = SAMPLES / "expected.csv"
        if expected.exists():
            print(f"(expected readings: {expected}; annotated images in reports/annotated)")
    if args.no_bot:
        return 0
    print("\n== 3/3 the Telegram bot ==", flush=True)
    if not settings.telegram_token:
        sys.stdout.write(
            "TELEGRAM_BOT_TOKEN is not set, so the bot is not started. Create a bot with "
            "@BotFather (https://t.me/BotFather), then `export TELEGRAM_BOT_TOKEN=...` and run "
            "`make run` again (or `.venv/bin/digits bot`).\n"
        )
        return 0
    return main(["bot"])
