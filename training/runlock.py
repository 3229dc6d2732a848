"""A run lock that survives crashes: `flock` on a file, released by the OS when the holder dies.

A PID file would go stale after a SIGKILL; an advisory `flock` cannot: the kernel drops it
with the process's last file descriptor, so a killed retrain never blocks the next one.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType


class LockHeld(RuntimeError):
    """Another process holds the lock (e.g. a retrain is already running)."""


class RunLock:
    """`with RunLock(path):` runs the body only if no other process holds `path`."""

    def __init__(self, path: Path | str, what: str = "a run") -> None:
        self.path = Path(path)
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise LockHeld(
                f"{self.what} is already in progress ({holder or 'holder unknown'}; "
                f"lock file {self.path})"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        # Who holds it, for the message the next process prints (informational only).
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read(fd: int) -> str:
    try:
        return os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        return ""
