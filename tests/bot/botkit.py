"""Shared test helpers: the people in the tests and the test-double command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from benchmarks.fake_telegram import FakeUser
from digits.settings import Settings

ADMIN = FakeUser(900001, "Admin")
ALICE = FakeUser(100001, "Alice")
BOB = FakeUser(100002, "Bob")
HERE = Path(__file__).parent
# A test double for `digits retrain` / `digits export`, used where the real command is
# missing (see fake_digits.py).
FAKE_DIGITS = (sys.executable, str(HERE / "fake_digits.py"))


def with_(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update=changes)
