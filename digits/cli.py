"""`digits COMMAND ...`: the composition root.

It reads the settings and hands them to the command, which wires them into the libraries
(`vision`, `db`, `training`, `bot`, `benchmarks`); nothing imports this package. Each
command is a module of `digits.commands`, imported only when it runs (so `digits db
upgrade` never loads PyTorch), with `register(parser)` and `run(args, settings) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

# "words of the command" -> (module in digits.commands, one-line help). Longest match wins.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "the main job: evaluate the shipped model and read the samples"),
    "read": ("read", "read handwritten numbers in photos, scans and PDFs"),
    "bot": ("bot", "run the Telegram bot (long polling; webhook with DIGITS_WEBHOOK_URL)"),
    "train": ("train", "train a CNN on MNIST (with augmentation)"),
    "crops": ("crops", "reader-cut training crops from photos of MNIST train digits"),
    "evaluate": ("evaluate", "evaluate a checkpoint on MNIST test and the devsets"),
    "samples": ("samples", "regenerate the synthetic sample photos in samples/"),
    "retrain": ("retrain", "fine-tune on MNIST + users' digits, promote if better"),
    "models": ("models", "list model versions with their metrics"),
    "models activate": ("activate", "make a model version active (roll back/forward)"),
    "export": ("export", "export the collected handwriting as a dataset"),
    "db": ("db", "database schema: upgrade | current | check | url | downgrade"),
    "bench read": ("bench_read", "reader accuracy and latency: synthetic + real photos"),
    "bench classify": ("bench_classify", "classification throughput (digits/s)"),
    "bench train": ("bench_train", "seconds until 99.0 % MNIST test accuracy"),
    "bench loop": ("bench_loop", "simulated users correct the bot, then retrain: before/after"),
    "bench db": ("bench_db", "16 concurrent writers vs SQLite and PostgreSQL: rows/s, loss"),
}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    rows = "\n".join(f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items())
    return f"usage: digits COMMAND [options]\n\ncommands:\n{rows}\n"


def _match(argv: list[str]) -> tuple[str, list[str]] | None:
    for n in range(min(len(argv), 3), 0, -1):
        name = " ".join(argv[:n])
        if name in COMMANDS:
            return name, argv[n:]
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        sys.stdout.write(_usage())
        return 0
    found = _match(argv)
    if found is None:
        prefix = argv[0]
        options = [name for name in COMMANDS if name.split()[0] == prefix]
        hint = "\n".join(f"  {o}" for o in options) if options else ""
        sys.stderr.write(f"digits: unknown command {' '.join(argv[:2])!r}\n{hint or _usage()}\n")
        return 2
    name, rest = found
    module_name, help_ = COMMANDS[name]
    parser = argparse.ArgumentParser(prog=f"digits {name}", description=help_)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    module = importlib.import_module(f"digits.commands.{module_name}")
    module.register(parser)
    args = parser.parse_args(rest)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from digits.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
        return int(module.run(args, settings) or 0)
    except SettingsError as exc:
        sys.stderr.write(f"digits: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("digits: interrupted\n")
        return 130
    except BrokenPipeError:
        # Whoever read the output stopped early (`digits read *.jpg | head`): nothing to
        # report. Stdout goes to /dev/null so that the interpreter's last flush is quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a command that the pipe ended


if __name__ == "__main__":
    raise SystemExit(main())
