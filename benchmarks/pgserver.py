"""A throwaway PostgreSQL server for tests and benchmarks.

``initdb`` + ``pg_ctl`` in a fresh temporary directory, listening only on 127.0.0.1 on a
free port, stopped and deleted on exit. PostgreSQL refuses to run as root, so under root
the server runs as an unprivileged account (``postgres`` if it exists, else ``nobody``).
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

REQUIRED_BINARIES = ("initdb", "pg_ctl", "postgres")
EXPECTED_MAJOR = 15


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries are missing or cannot be run here."""


class PostgresServerError(RuntimeError):
    """The throwaway server failed to initialise, start or stop."""


def find_bindir(bindir: str | Path | None = None) -> Path:
    """Where initdb, pg_ctl and postgres live: ``bindir``, PATH, pg_config, or Debian's layout."""
    candidates: list[Path] = []
    if bindir is not None:
        candidates.append(Path(bindir))
    else:
        on_path = shutil.which("pg_ctl")
        if on_path:
            candidates.append(Path(on_path).resolve().parent)
        pg_config = shutil.which("pg_config")
        if pg_config:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                out = subprocess.run(
                    [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
                ).stdout.strip()
                if out:
                    candidates.append(Path(out))
        debian = sorted(
            glob.glob("/usr/lib/postgresql/*/bin"),
            key=lambda p: int(re.sub(r"\D", "", Path(p).parent.name) or 0),
            reverse=True,
        )
        candidates.extend(Path(p) for p in debian)
    for candidate in candidates:
        if all(os.access(candidate / name, os.X_OK) for name in REQUIRED_BINARIES):
            return candidate
    searched = ", ".join(str(c) for c in candidates) or "PATH, pg_config, /usr/lib/postgresql/*/bin"
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found (searched: "
        f"{searched}). Install PostgreSQL {EXPECTED_MAJOR} (Debian/Ubuntu: "
        f"`apt-get install postgresql-{EXPECTED_MAJOR}`) or put its bin directory on PATH."
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_account() -> pwd.struct_passwd | None:
    """The account to run the server as: None when not root (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PostgresUnavailable(
        "running as root, and PostgreSQL refuses to run as root, but neither a 'postgres'"
        " nor a 'nobody' account exists to run it as; create one (useradd --system postgres)"
    )


def _base_dir(account: pwd.struct_passwd | None) -> Path:
    """A temp directory the server account can reach (every ancestor world-searchable)."""
    base = Path(tempfile.gettempdir())
    if account is None:
        return base
    for candidate in (base, Path("/tmp"), Path("/var/tmp"), Path("/dev/shm")):
        with contextlib.suppress(OSError):
            chain = [candidate.resolve(), *candidate.resolve().parents]
            if candidate.is_dir() and all(os.stat(p).st_mode & 0o001 for p in chain):
                return candidate
    raise PostgresUnavailable(
        f"no temporary directory that the {account.pw_name!r} account can reach"
        f" (tried {base}, /tmp, /var/tmp, /dev/shm)"
    )


@dataclass(frozen=True)
class PostgresServer:
    """A running throwaway server; ``url()`` gives SQLAlchemy URLs for its databases."""

    host: str
    port: int
    user: str
    directory: Path
    version: str

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    def _admin(self) -> Any:
        import psycopg

        return psycopg.connect(
            host=self.host, port=self.port, user=self.user, dbname="postgres", autocommit=True
        )

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create a database (optionally a copy of ``template``) and return its URL."""
        from psycopg import sql

        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        with self._admin() as conn:
            conn.execute(statement)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        from psycopg import sql

        with self._admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


class _Runner:
    """Runs the PostgreSQL binaries as the server account."""

    def __init__(self, bindir: Path, account: pwd.struct_passwd | None) -> None:
        self.bindir = bindir
        self.account = account
        # PG* variables from the caller's shell (PGDATA, PGPORT...) must not leak in.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        self.env.update(LC_ALL="C", LANG="C")
        if account is not None:
            self.env.update(HOME=account.pw_dir or "/", USER=account.pw_name)

    def run(self, name: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {}
        if self.account is not None:
            kwargs.update(
                user=self.account.pw_uid, group=self.account.pw_gid, extra_groups=[], umask=0o077
            )
        return subprocess.run(
            [str(self.bindir / name), *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            cwd="/",
            check=False,
            **kwargs,
        )


def _server_options(port: int, durable: bool) -> list[str]:
    options = [
        "-c listen_addresses=127.0.0.1",
        f"-p {port}",
        "-c unix_socket_directories=''",
        "-c max_connections=200",
        "-c log_min_messages=warning",
    ]
    if not durable:
        # A test server's data is thrown away: skip every fsync.
        options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
    return options


@contextlib.contextmanager
def throwaway_postgres(
    *, durable: bool = False, bindir: str | Path | None = None, start_attempts: int = 5
) -> Iterator[PostgresServer]:
    """Start a private PostgreSQL server, yield it, then stop it and delete its files.

    ``durable=False`` (tests) turns fsync off; the benchmark passes True so its numbers
    include real commits.
    """
    bins = find_bindir(bindir)
    account = _server_account()
    runner = _Runner(bins, account)
    version_out = runner.run("postgres", "--version", timeout=30)
    if version_out.returncode != 0:
        raise PostgresUnavailable(f"cannot run {bins / 'postgres'}: {version_out.stderr.strip()}")
    version = version_out.stdout.strip()
    match = re.search(r"(\d+)(?:\.\d+)?", version)
    if match and int(match.group(1)) != EXPECTED_MAJOR:
        log.warning("expected PostgreSQL %d, found %s", EXPECTED_MAJOR, version)

    root = Path(tempfile.mkdtemp(prefix="digits-pg-", dir=_base_dir(account)))
    data = root / "data"
    logfile = root / "server.log"
    started = False
    try:
        if account is not None:
            os.chown(root, account.pw_uid, account.pw_gid)
        init = runner.run(
            "initdb",
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            timeout=120,
        )
        if init.returncode != 0:
            raise PostgresServerError(
                f"initdb failed ({init.returncode}):\n{init.stderr or init.stdout}"
            )
        port = 0
        for attempt in range(1, start_attempts + 1):
            port = _free_port()
            start = runner.run(
                "pg_ctl",
                "-D",
                str(data),
                "-l",
                str(logfile),
                "-w",
                "-t",
                "60",
                "-o",
                " ".join(_server_options(port, durable)),
                "start",
                timeout=90,
            )
            if start.returncode == 0:
                started = True
                break
            tail = _tail(logfile)
            if "could not bind" in tail or "already in use" in tail:
                log.info("port %d taken, retrying (attempt %d)", port, attempt)
                continue
            raise PostgresServerError(f"pg_ctl start failed:\n{start.stderr}\n{tail}")
        if not started:
            raise PostgresServerError(f"no free port after {start_attempts} attempts")
        server = PostgresServer("127.0.0.1", port, "postgres", root, version)
        _wait_ready(server)
        log.info("throwaway %s on 127.0.0.1:%d (%s)", version, port, root)
        yield server
    finally:
        if started:
            stop = runner.run(
                "pg_ctl",
                "-D",
                str(data),
                "-m",
                "fast" if durable else "immediate",
                "-w",
                "stop",
                timeout=60,
            )
            if stop.returncode != 0:
                log.warning("pg_ctl stop failed: %s", stop.stderr.strip())
                _kill_postmaster(data)
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(server: PostgresServer, timeout: float = 30.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with server._admin() as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise PostgresServerError(f"server not accepting connections: {exc}") from exc
            time.sleep(0.1)


def _kill_postmaster(data: Path) -> None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int((data / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, 9)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
