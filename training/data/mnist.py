"""MNIST from the four original IDX `.gz` files, md5-checked, downloaded when absent."""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import struct
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

log = logging.getLogger(__name__)

FILES: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
# The mirrors torchvision uses, in its order.
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
DEFAULT_DIR = Path.home() / ".cache" / "digits" / "mnist"


class MnistError(RuntimeError):
    """MNIST files are missing, corrupt, or could not be downloaded."""


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # uint8 [N, 28, 28], white ink on black
    labels: np.ndarray  # uint8 [N]


def md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def parse_idx(data: bytes, *, name: str = "idx") -> np.ndarray:
    """Parse an uncompressed IDX buffer (magic 2049 labels, 2051 images)."""
    if len(data) < 8:
        raise MnistError(f"{name}: too short to be an IDX file ({len(data)} bytes)")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08 or ndim not in (1, 3):
        raise MnistError(f"{name}: bad IDX magic {data[:4].hex()} (want uint8 labels or images)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise MnistError(f"{name}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(dims))
    if len(data) - header != expected:
        raise MnistError(
            f"{name}: IDX header promises {expected} bytes of data, file has {len(data) - header}"
        )
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def _read(path: Path, *, verify: bool) -> np.ndarray:
    if verify:
        got = md5(path)
        if got != FILES[path.name]:
            raise MnistError(
                f"{path}: md5 {got} does not match the original ({FILES[path.name]}); "
                "the file is corrupt or not MNIST: delete it to download again"
            )
    try:
        with gzip.open(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as exc:
        raise MnistError(f"{path}: not a readable gzip file ({exc})") from exc
    return parse_idx(data, name=str(path))


def download(directory: Path, *, mirrors: tuple[str, ...] | None = None) -> None:
    """Fetch missing files from torchvision's mirrors, with a progress bar, atomically."""
    mirrors = mirrors or MIRRORS
    directory.mkdir(parents=True, exist_ok=True)
    for name, checksum in FILES.items():
        target = directory / name
        if target.exists():
            continue
        errors = []
        for mirror in mirrors:
            try:
                _fetch(mirror + name, target, checksum)
                break
            except (urllib.error.URLError, OSError, MnistError) as exc:
                errors.append(f"{mirror}: {exc}")
        else:
            raise MnistError(f"could not download {name}: " + "; ".join(errors))


def _fetch(url: str, target: Path, checksum: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with (
            urllib.request.urlopen(url, timeout=30) as response,
            os.fdopen(fd, "wb") as out,
            tqdm(
                total=int(response.headers.get("Content-Length") or 0) or None,
                unit="B",
                unit_scale=True,
                desc=target.name,
            ) as bar,
        ):
            for chunk in iter(lambda: response.read(1 << 16), b""):
                out.write(chunk)
                bar.update(len(chunk))
        if md5(Path(tmp)) != checksum:
            raise MnistError(f"{url}: downloaded file fails its md5 check")
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def load_mnist(
    directory: Path | str | None = None, *, allow_download: bool = True, verify: bool = True
) -> tuple[Split, Split]:
    """(train, test) from `directory` (default ~/.cache/digits/mnist).

    Missing files are downloaded when `allow_download`; otherwise, or when offline, a
    `MnistError` names the directory and the files it lacks.
    """
    directory = Path(directory) if directory else DEFAULT_DIR
    missing = [name for name in FILES if not (directory / name).exists()]
    if missing and allow_download:
        log.info("MNIST files missing in %s, downloading %s", directory, ", ".join(missing))
        try:
            download(directory)
        except MnistError as exc:
            raise MnistError(
                f"MNIST is not in {directory} (missing {', '.join(missing)}) and downloading "
                f"failed: {exc}. Put the four original .gz files there or set DIGITS_MNIST_DIR."
            ) from exc
    elif missing:
        raise MnistError(
            f"MNIST is not in {directory}: missing {', '.join(missing)}. "
            "Set DIGITS_MNIST_DIR (or --mnist-dir) to the folder with the four original .gz files."
        )
    arrays = {name: _read(directory / name, verify=verify) for name in FILES}
    train = Split(arrays["train-images-idx3-ubyte.gz"], arrays["train-labels-idx1-ubyte.gz"])
    test = Split(arrays["t10k-images-idx3-ubyte.gz"], arrays["t10k-labels-idx1-ubyte.gz"])
    for split, name in ((train, "train"), (test, "test")):
        if len(split.images) != len(split.labels):
            raise MnistError(
                f"MNIST {name}: {len(split.images)} images but {len(split.labels)} labels"
            )
    return train, test
