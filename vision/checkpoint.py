"""The checkpoint format: tensors and plain values only, written atomically.

Both sides live here (vision loads, training saves) so one module knows the format.
Every checkpoint loads with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

FORMAT = "digits-checkpoint"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("format", "format_version", "state_dict", "model_config", "preprocessing")
# A classifier fine-tuned by the learning loop carries the line model it was promoted with
# under this key (a line checkpoint's body): one file, one sha256, one version to activate.
LINES_KEY = "lines"


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, or not one of ours."""


def _plain(value: Any) -> Any:
    """Recursively turn tuples/Paths/numpy scalars into JSON-like plain values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, str):  # str subclasses (torch.__version__) would pickle their class
        return str(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, torch.Tensor):
        return value
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"checkpoint values must be plain, got {type(value).__name__}")


def save_checkpoint(path: Path, payload: dict[str, Any]) -> str:
    """Write atomically (temp file + fsync + rename); returns the file's sha256.

    A crash at any moment leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"format": FORMAT, "format_version": FORMAT_VERSION, **_plain(payload)}
    body["state_dict"] = {
        k: v.detach().cpu().contiguous() for k, v in payload["state_dict"].items()
    }
    buffer = io.BytesIO()
    torch.save(body, buffer)
    data = buffer.getvalue()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return hashlib.sha256(data).hexdigest()


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load and validate; raises CheckpointError with the path and the reason."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        body = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        raise CheckpointError(
            f"cannot read checkpoint {path}: not a model file ({exc.__class__.__name__})"
        ) from exc
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a digits checkpoint")
    missing = [k for k in REQUIRED_KEYS if k not in body]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}")
    if int(body["format_version"]) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format version {body['format_version']}; this build reads "
            f"up to {FORMAT_VERSION}: upgrade digits"
        )
    return body


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
