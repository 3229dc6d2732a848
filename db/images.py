"""Original images, stored content-addressed by SHA-256 under the data directory.

A file appears at its final path only complete (written to a temporary file in the same
directory, fsynced, then renamed), so a reader never sees half an image, and a crash
leaves at most a hidden ``.tmp`` file that ``sweep_temp_files`` removes.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TEMP_SUFFIX = ".tmp"
_CHUNK = 1 << 20

# Magic numbers of the formats people send; anything else is kept as ".bin".
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"%PDF-", "pdf"),
    (b"II*\x00", "tif"),
    (b"MM\x00*", "tif"),
    (b"BM", "bmp"),
)


class ImageNotFound(LookupError):
    """No stored image has that hash (never stored, deleted, or storage is off)."""


class ImageCorrupt(OSError):
    """A stored file does not hash to its name (disk damage or tampering)."""


@dataclass(frozen=True)
class StoredImage:
    sha256: str
    path: Path | None  # None when image storage is off


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def guess_extension(data: bytes) -> str:
    """A file extension from the content's magic number ("bin" when unknown)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    for magic, ext in _SIGNATURES:
        if data.startswith(magic):
            return ext
    return "bin"


def check_sha256(sha256: str) -> str:
    """Validate a hex SHA-256 (it becomes part of a path: nothing else may get through)."""
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise ValueError(f"not a lowercase hex SHA-256: {sha256!r}")
    return sha256


class ImageStore:
    """Content-addressed files ``root/ab/cd/<sha256>.<ext>``; ``root=None`` stores nothing."""

    def __init__(self, root: Path | str | None) -> None:
        self.root = Path(root) if root is not None else None

    @property
    def enabled(self) -> bool:
        return self.root is not None

    def _dir(self, sha256: str) -> Path:
        if self.root is None:
            raise RuntimeError("this image store keeps no files")
        return self.root / sha256[:2] / sha256[2:4]

    def put(self, data: bytes, *, ext: str | None = None) -> StoredImage:
        """Store ``data`` (idempotent: the same bytes map to the same file)."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"image data must be bytes, got {type(data).__name__}")
        data = bytes(data)
        if not data:
            raise ValueError("empty image")
        sha = sha256_hex(data)
        if self.root is None:
            return StoredImage(sha, None)
        existing = self.path(sha)
        if existing is not None and existing.stat().st_size == len(data):
            return StoredImage(sha, existing)
        ext = (ext or guess_extension(data)).lower().lstrip(".")
        if not re.fullmatch(r"[a-z0-9]{1,8}", ext):
            raise ValueError(f"bad file extension {ext!r}")
        directory = self._dir(sha)
        directory.mkdir(parents=True, exist_ok=True)
        final = directory / f"{sha}.{ext}"
        self._write_atomic(final, data)
        return StoredImage(sha, final)

    @staticmethod
    def _write_atomic(final: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=_TEMP_SUFFIX)
        try:
            view = memoryview(data)
            offset = 0
            while offset < len(view):
                offset += os.write(fd, view[offset : offset + _CHUNK])
            os.fsync(fd)
            os.close(fd)
            fd = -1
            os.chmod(tmp, 0o644)
            os.replace(tmp, final)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(final.parent)

    def path(self, sha256: str) -> Path | None:
        """The stored file for ``sha256``, or None."""
        check_sha256(sha256)
        if self.root is None:
            return None
        directory = self._dir(sha256)
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(directory):
                if entry.name.startswith(sha256 + ".") and not entry.name.endswith(_TEMP_SUFFIX):
                    return Path(entry.path)
        return None

    def exists(self, sha256: str) -> bool:
        return self.path(sha256) is not None

    def read(self, sha256: str, *, verify: bool = True) -> bytes:
        """The stored bytes; with ``verify`` also checks they still hash to ``sha256``."""
        found = self.path(sha256)
        if found is None:
            raise ImageNotFound(f"no stored image {sha256}")
        try:
            data = found.read_bytes()
        except FileNotFoundError as exc:  # deleted between lookup and read
            raise ImageNotFound(f"no stored image {sha256}") from exc
        if verify and sha256_hex(data) != sha256:
            raise ImageCorrupt(f"{found} does not hash to its name")
        return data

    def open(self, sha256: str) -> Path:
        """The path of a stored image, for readers that want a file (raises if missing)."""
        found = self.path(sha256)
        if found is None:
            raise ImageNotFound(f"no stored image {sha256}")
        return found

    def delete(self, sha256: str) -> bool:
        """Remove the stored image; True if something was removed. Call after commit."""
        check_sha256(sha256)
        if self.root is None:
            return False
        removed = False
        directory = self._dir(sha256)
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(directory):
                if entry.name.startswith(sha256 + "."):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
                        removed = True
        if removed:
            _fsync_dir(directory)
            for parent in (directory, directory.parent):  # tidy empty fan-out dirs
                with contextlib.suppress(OSError):
                    parent.rmdir()
        return removed

    def iter_sha256(self) -> Iterator[str]:
        """Every stored image's hash (for audits: files no reading refers to)."""
        if self.root is None or not self.root.is_dir():
            return
        for path in self.root.glob("??/??/*"):
            name = path.name
            if name.startswith(".") or name.endswith(_TEMP_SUFFIX):
                continue
            sha = name.split(".", 1)[0]
            if _SHA256.match(sha):
                yield sha

    def sweep_temp_files(self, older_than_s: float = 3600.0) -> int:
        """Delete temporary files a crashed writer left behind; returns how many."""
        if self.root is None or not self.root.is_dir():
            return 0
        cutoff = time.time() - older_than_s
        count = 0
        for path in self.root.glob(f"??/??/.*{_TEMP_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime <= cutoff:
                    path.unlink()
                    count += 1
        if count:
            log.info("removed %d abandoned temporary image files", count)
        return count


def _fsync_dir(directory: Path) -> None:
    # Make the rename itself durable; some filesystems do not allow it, which is fine.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
