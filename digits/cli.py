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
    "web": ("web", "the web app: draw or send a picture, JSON API, /admin dashboard"),
    "train": ("train", "train a CNN on MNIST (with augmentation)"),
    "train lines": ("train_lines", "train the line model (CTC) on drawn fields and photo lines"),
    "crops": ("crops", "reader-cut training crops from photos of MNIST train digits"),
    "evaluate": ("evaluate", "evaluate a checkpoint on MNIST test and the devsets"),
    "samples": ("samples", "regenerate the synthetic sample photos in samples/"),
    "retrain": ("retrain", "fine-tune on MNIST + users' digits, promote if better"),
    "models": ("models", "list model versions with their metrics"),
    "models activate": ("activate", "make a model version active (roll back/forward)"),
    "export": ("export", "export the collected handwriting as a dataset"),
    "db": ("db", "database schema: upgrade | current | check | url | downgrade | gc"),
    "bench read": ("bench_read", "reader accuracy and latency: synthetic + real photos"),
    "bench latency": (
        "bench_latency",
        "reader p50/p95 on the dev photos, idle and beside a busy core",
    ),
    "bench classify": ("bench_classify", "classification throughput (digits/s)"),
    "bench train": ("bench_train", "seconds until 99.0 % MNIST test accuracy"),
    "bench loop": ("bench_loop", "simulated users correct the bot, then retrain: before/after"),
    "bench bot": ("bench_bot", "50 users x 10 photos through a fake Bot API: photos/s, losses"),
    "bench web": ("bench_web", "16 concurrent clients POST photos to `digits web`"),
    "bench db": ("bench_db", "16 concurrent writers vs SQLite and PostgreSQL: rows/s, loss"),
    "bench thresholds": ("bench_thresholds", "hand-set numbers in vision/segment, per module"),
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


# Errors a user can act on, by module and class name: reported as one line, exit 1. The
# modules are looked up only once loaded (an error of theirs means they are), so the
# dispatcher imports none of them.
KNOWN_ERRORS: tuple[tuple[str, str], ...] = (
    ("vision.decode", "ImageError"),
    ("vision.checkpoint", "CheckpointError"),
    ("vision.segment.candidates", "SegmentationError"),
    ("db.errors", "StorageError"),
    ("db.migrations", "MigrationError"),
    ("benchmarks.pgserver", "PostgresUnavailable"),
    ("benchmarks.pgserver", "PostgresServerError"),
    ("alembic.util.exc", "CommandError"),
    ("training.retrain", "RetrainError"),
    ("training.export", "ExportError"),
    ("training.data.mnist", "MnistError"),
    ("training.data.devsets", "DevsetError"),
    ("telegram.error", "TelegramError"),
)


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def describe_error(exc: BaseException) -> str:
    """One line for the user; the exception type only where its message needs it."""
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
    if sqlalchemy_exc is not None and isinstance(exc, sqlalchemy_exc.SQLAlchemyError):
        # The driver's own message, without SQLAlchemy's "(Background on this error ...)".
        orig = getattr(exc, "orig", None)
        detail = _first_line(str(orig) if orig is not None else str(exc))
        if isinstance(exc, sqlalchemy_exc.ArgumentError):
            return f"the database URL is not usable: {detail}"
        return f"the database cannot be used: {detail}"
    for module_name, class_name in KNOWN_ERRORS:
        module = sys.modules.get(module_name)
        cls = getattr(module, class_name, None) if module is not None else None
        if cls is not None and isinstance(exc, cls):
            return _first_line(str(exc)) or class_name
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or _first_line(str(exc)) or type(exc).__name__}"
    return f"unexpected {type(exc).__name__}: {_first_line(str(exc))} (-v shows the traceback)"


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
    if not args.verbose:
        # Alembic logs its plugins and context at INFO on every command that opens the
        # database: noise above the one line a user should see.
        logging.getLogger("alembic").setLevel(logging.WARNING)
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
    except Exception as exc:
        # A broken database, a missing model, an unwritable path: one line and exit 1,
        # never a traceback (-v keeps it for debugging). A module's `on_error(message)`
        # may add what its callers parse (`digits retrain`: the JSON summary line).
        if args.verbose:
            raise
        message = describe_error(exc)
        action = getattr(args, "action", None)  # `digits db upgrade`: the action too
        label = f"digits {name} {action}" if isinstance(action, str) else f"digits {name}"
        sys.stderr.write(f"{label}: {message}\n")
        on_error = getattr(module, "on_error", None)
        if on_error is not None:
            on_error(message)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
