"""Retraining and export run as ``digits`` subprocesses, never inside the event loop.

The training code is not imported here: it runs in its own process (own memory, own
crash), and ``digits retrain`` takes its own crash-safe file lock so two runs never
overlap even across restarts or bot instances. ``CommandRunner`` adds the in-process
half: while its subprocess runs, a second start is refused instead of queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

DIGITS = (sys.executable, "-m", "digits.cli")
_TAIL = 4000

# Settings field -> the environment variable `digits` reads it from. The bot hands its
# own settings to the subprocess, so `digits retrain` works on the bot's database and
# data directory however the bot was configured (environment, .env, or code).
SETTINGS_ENV = {
    "data_dir": "DIGITS_DATA_DIR",
    "mnist_dir": "DIGITS_MNIST_DIR",
    "devsets_dir": "DIGITS_DEVSETS_DIR",
    "model_path": "DIGITS_MODEL_PATH",
    "retrain_min_new_labels": "DIGITS_RETRAIN_MIN_NEW_LABELS",
    "retrain_epochs": "DIGITS_RETRAIN_EPOCHS",
    "retrain_lr": "DIGITS_RETRAIN_LR",
    "retrain_user_fraction": "DIGITS_RETRAIN_USER_FRACTION",
    "retrain_epoch_size": "DIGITS_RETRAIN_EPOCH_SIZE",
    "retrain_holdout_fraction": "DIGITS_RETRAIN_HOLDOUT_FRACTION",
    "store_images": "DIGITS_STORE_IMAGES",
    "promote_max_mnist_drop": "DIGITS_PROMOTE_MAX_MNIST_DROP",
    "promote_min_user_gain": "DIGITS_PROMOTE_MIN_USER_GAIN",
    "promote_min_gain_digits": "DIGITS_PROMOTE_MIN_GAIN_DIGITS",
    "promote_max_p_value": "DIGITS_PROMOTE_MAX_P",
    "export_salt": "DIGITS_EXPORT_SALT",
}


def settings_env(settings: Any) -> dict[str, str]:
    """Environment variables that reproduce ``settings`` in a ``digits`` subprocess."""
    env = {"DATABASE_URL": settings.db_url}
    for name, variable in SETTINGS_ENV.items():
        value = getattr(settings, name, None)
        if value is None or value == "":
            continue
        env[variable] = str(value.resolve()) if hasattr(value, "resolve") else str(value)
    return env


@dataclass(frozen=True)
class Outcome:
    """How a subprocess ended: exit code, its final JSON summary line, its output tail."""

    returncode: int
    summary: dict[str, Any] | None
    stdout_tail: str
    stderr_tail: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe(self) -> str:
        """One short line for a chat message, from the summary (else the output's tail)."""
        if self.summary:
            return describe_summary(self.summary)[:500]
        tail = (self.stderr_tail or self.stdout_tail).strip().splitlines()
        return (tail[-1] if tail else "no output")[:500]


def _percent(scores: Any, key: str) -> str | None:
    value = scores.get(key) if isinstance(scores, dict) else None
    return f"{100 * value:.2f} %" if isinstance(value, int | float) else None


def describe_summary(summary: dict[str, Any]) -> str:
    """``digits retrain``'s JSON summary as a sentence; other summaries as key: value."""
    status = summary.get("status")
    if not isinstance(status, str):
        return ", ".join(f"{k}: {v}" for k, v in summary.items() if not isinstance(v, dict))
    parts = [status]
    if summary.get("version") and status == "promoted":
        parts[0] += f", now {summary['version']}"
    if summary.get("reason"):
        parts.append(str(summary["reason"]))
    for key, name in (("mnist_test_accuracy", "MNIST"), ("user_holdout_accuracy", "users")):
        before = _percent(summary.get("active"), key)
        after = _percent(summary.get("candidate"), key)
        if before and after:
            parts.append(f"{name} {before} → {after}")
    if summary.get("new_labels"):
        parts.append(f"{summary['new_labels']} new labels")
    return "; ".join(parts)


def last_json_line(text: str) -> dict[str, Any] | None:
    """The last line of ``text`` that is a JSON object (the command's summary)."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                value = json.loads(line)
                if isinstance(value, dict):
                    return value
    return None


@dataclass
class CommandRunner:
    """Runs one subprocess at a time; ``run`` returns None when one is already running."""

    argv: Sequence[str]
    name: str
    timeout_s: float = 6 * 3600.0
    env: dict[str, str] | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    runs: int = 0

    @property
    def running(self) -> bool:
        return self._lock.locked()

    async def run(
        self, *extra: str, on_start: Callable[[], Awaitable[Any]] | None = None
    ) -> Outcome | None:
        """Run the command (``on_start`` is awaited once it is sure to run)."""
        if self._lock.locked():  # checked and taken with no await between: atomic
            log.info("%s already running; not starting another", self.name)
            return None
        async with self._lock:
            self.runs += 1
            if on_start is not None:
                await on_start()
            return await self._run([*self.argv, *extra])

    async def _run(self, argv: list[str]) -> Outcome:
        loop = asyncio.get_running_loop()
        started = loop.time()
        log.info("starting %s: %s", self.name, " ".join(argv))
        env = {**os.environ, **(self.env or {})}
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), self.timeout_s)
        except (TimeoutError, asyncio.CancelledError):
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
        stdout = out.decode("utf-8", "replace")
        stderr = err.decode("utf-8", "replace")
        code = process.returncode if process.returncode is not None else -1
        outcome = Outcome(
            returncode=code,
            summary=last_json_line(stdout),
            stdout_tail=stdout[-_TAIL:],
            stderr_tail=stderr[-_TAIL:],
            seconds=loop.time() - started,
        )
        level = logging.INFO if outcome.ok else logging.WARNING
        log.log(
            level,
            "%s exited %d after %.1fs: %s",
            self.name,
            code,
            outcome.seconds,
            outcome.describe(),
        )
        return outcome
