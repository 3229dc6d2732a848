"""LineReader: the line model loaded once, reading bands of digits in batches.

`read` returns each band's best path: the digits, where each one sits along the band,
and its probabilities over 0-9. The reader matches those positions to the shapes it
cut (`vision.fit_lines`).
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vision.checkpoint import LINES_KEY, CheckpointError, file_sha256, load_checkpoint
from vision.classifier import DEFAULT_THREADS, intra_op_threads, pick_device
from vision.line_model import (
    BLANK,
    LINE_STRIDE,
    LineConfig,
    LineNet,
    line_batch,
    line_frames,
    resize_line,
)

LINE_MODEL_PATH = Path(__file__).resolve().parent / "models" / "lines.pt"


def line_body(body: dict[str, Any], path: Path | str) -> dict[str, Any]:
    """The line model in a checkpoint: a line checkpoint's own body, or the one a
    classifier checkpoint carries (`LINES_KEY`)."""
    if body.get("kind") == "line":
        return body
    inner = body.get(LINES_KEY)
    if isinstance(inner, dict) and inner.get("kind") == "line":
        return inner
    raise CheckpointError(f"{path} is not a line model and carries none")


@dataclass
class LineRead:
    """One band's digits: the text, each digit's centre (band pixels) and probabilities."""

    text: str
    centres: np.ndarray  # float [n], x in the band's own pixels
    probs: np.ndarray  # float32 [n, 10], each row sums to 1


def best_path(log_probs: np.ndarray, scale: float) -> LineRead:
    """Greedy CTC decoding of [T, 11] log-probabilities; `scale` band px per input px."""
    best = log_probs.argmax(axis=1)
    frames = [
        t for t in range(len(best)) if best[t] != BLANK and (t == 0 or best[t] != best[t - 1])
    ]
    probs = np.exp(log_probs[frames, :BLANK]) if frames else np.zeros((0, BLANK), np.float32)
    probs = probs / np.maximum(probs.sum(axis=1, keepdims=True), 1e-9)
    centres = (np.array(frames, np.float64) + 0.5) * LINE_STRIDE * scale
    text = "".join(str(int(best[t])) for t in frames)
    return LineRead(text, centres, probs.astype(np.float32))


@dataclass
class LineReader:
    """The line model on one device; `read` is thread-safe like `DigitClassifier.classify`."""

    model: torch.nn.Module
    device: torch.device
    path: Path | None = None
    sha256: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    threads: int = DEFAULT_THREADS
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(
        cls,
        path: Path | str | None = None,
        *,
        device: str | torch.device | None = None,
        threads: int = DEFAULT_THREADS,
    ) -> LineReader:
        """Load a line checkpoint, or the line model a classifier checkpoint carries (the
        shipped one when `path` is None)."""
        path = Path(path) if path is not None else LINE_MODEL_PATH
        body = line_body(load_checkpoint(path), path)
        return cls.from_body(
            body, device=device, path=path, sha256=file_sha256(path), threads=threads
        )

    @classmethod
    def from_body(
        cls,
        body: dict[str, Any],
        *,
        device: str | torch.device | None = None,
        path: Path | None = None,
        sha256: str = "",
        threads: int = DEFAULT_THREADS,
    ) -> LineReader:
        """A line model from a loaded checkpoint body (`line_body`)."""
        try:
            net = LineNet(LineConfig.from_dict(body["model_config"]))
            net.load_state_dict(body["state_dict"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            where = path or "the checkpoint"
            raise CheckpointError(f"{where}: weights do not fit the line model: {exc}") from exc
        info = {k: v for k, v in body.items() if k != "state_dict"}
        return cls.from_model(
            net, device=device, path=path, sha256=sha256, info=info, threads=threads
        )

    @classmethod
    def from_model(
        cls,
        net: LineNet,
        *,
        device: str | torch.device | None = None,
        path: Path | None = None,
        sha256: str = "",
        info: dict[str, Any] | None = None,
        threads: int = DEFAULT_THREADS,
    ) -> LineReader:
        """Wrap an in-memory network (training evaluates candidates this way)."""
        dev = pick_device(str(device) if device is not None else None)
        return cls(net.to(dev).eval(), dev, path, sha256, info or {}, threads)

    @property
    def version(self) -> str:
        return str(self.info.get("version") or (self.sha256[:12] if self.sha256 else "memory"))

    def read(self, bands: list[np.ndarray]) -> list[LineRead]:
        """Read BGR or grey uint8 bands, one line of digits each, in one batch."""
        if not bands:
            return []
        resized = [resize_line(b) for b in bands]
        x, frames = line_batch(resized)
        lock = self._lock if self.threads != 1 else contextlib.nullcontext()
        with lock, intra_op_threads(self.threads), torch.inference_mode():
            logits = self.model(x.to(self.device), frames).float()
            log_probs = torch.log_softmax(logits, dim=2).cpu().numpy()
        return [
            best_path(log_probs[i, : line_frames(r.shape[1])], b.shape[1] / r.shape[1])
            for i, (b, r) in enumerate(zip(bands, resized, strict=True))
        ]
