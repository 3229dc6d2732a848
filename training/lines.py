"""The line model's training loop: CTC on bands of digits with their strings.

Batches are drawn from bands of similar width (little padding); the learning rate warms
up, then follows a cosine to zero over a step budget. The loop also fine-tunes: the
retraining job starts it from the shipped weights with users' corrected lines added.
"""

from __future__ import annotations

import logging
import math
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from training.data.lines import LineSet
from vision.checkpoint import LINES_KEY, load_checkpoint, save_checkpoint
from vision.classifier import pick_device
from vision.line_model import BLANK, LineConfig, LineNet, line_batch
from vision.line_reader import LineReader, line_body

log = logging.getLogger(__name__)

LINE_PREPROCESSING = 1  # vision.line_model.normalize_line's version


@dataclass
class LineTrainConfig:
    """Everything that determines a line model's training run (saved in the checkpoint)."""

    steps: int = 6000
    batch_size: int = 48
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 300
    clip: float = 5.0
    seed: int = 0
    threads: int | None = None
    device: str | None = None
    model: LineConfig = field(default_factory=LineConfig)

    def to_dict(self) -> dict[str, Any]:
        raw = asdict(self)
        raw["model"] = self.model.to_dict()
        return raw


@dataclass
class LineTrainResult:
    model: LineNet
    config: LineTrainConfig
    exact: float  # share of test bands read exactly
    seconds: float
    history: list[dict[str, float]]


def make_batch(
    lines: LineSet, index: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(inputs [B, 1, H, W], frames [B], targets (concatenated), target lengths [B])."""
    x, frames = line_batch([lines.bands[i] for i in index])
    targets = torch.tensor([int(ch) for i in index for ch in lines.texts[i]], dtype=torch.long)
    lengths = torch.tensor([len(lines.texts[i]) for i in index])
    return x, frames, targets, lengths


def exact_rate(reader: LineReader, lines: LineSet, batch: int = 64) -> float:
    """Share of bands the line model reads exactly."""
    if not len(lines):
        return 0.0
    hits = 0
    for start in range(0, len(lines), batch):
        bands = lines.bands[start : start + batch]
        reads = reader.read(bands)
        hits += sum(
            r.text == t for r, t in zip(reads, lines.texts[start : start + batch], strict=True)
        )
    return hits / len(lines)


def train_lines(
    config: LineTrainConfig,
    train: LineSet,
    test: LineSet,
    *,
    init: dict[str, torch.Tensor] | None = None,
    progress: bool = True,
) -> LineTrainResult:
    """Train (or, with `init`, fine-tune) a line model; returns it with its test exact rate."""
    if not len(train):
        raise ValueError("no training lines")
    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = pick_device(config.device)
    model = LineNet(config.model)
    if init is not None:
        model.load_state_dict(init)
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    ctc = nn.CTCLoss(blank=BLANK, zero_infinity=True)
    rng = np.random.default_rng(config.seed)
    order = np.argsort([b.shape[1] for b in train.bands], kind="stable")
    buckets = [order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)]
    start = time.perf_counter()
    history: list[dict[str, float]] = []
    bar = tqdm(range(config.steps), desc="line model", disable=not progress)
    running = 0.0
    for step in bar:
        frac = step / config.steps
        lr = config.lr * min(1.0, (step + 1) / max(1, config.warmup_steps))
        lr *= 0.5 * (1 + math.cos(math.pi * frac))
        for group in opt.param_groups:
            group["lr"] = lr
        bucket = buckets[int(rng.integers(len(buckets)))]
        x, frames, targets, lengths = make_batch(train, list(bucket))
        log_probs = model(x.to(device), frames).log_softmax(2).transpose(0, 1)
        loss = ctc(log_probs, targets.to(device), frames, lengths)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        opt.step()
        value = loss.item()
        running = 0.98 * running + 0.02 * value if step else value
        if step % 100 == 0:
            bar.set_postfix(loss=f"{running:.3f}")
            history.append({"step": step, "loss": running, "lr": lr})
    model.eval()
    exact = exact_rate(LineReader.from_model(model, device=device), test)
    seconds = time.perf_counter() - start
    log.info("line model: %.2f %% of %d test bands exact, %.0f s", 100 * exact, len(test), seconds)
    return LineTrainResult(model.cpu(), config, exact, seconds, history)


def line_payload(result: LineTrainResult, **extra: Any) -> dict[str, Any]:
    """The body of a line checkpoint (or of the line model a classifier carries)."""
    return {
        "kind": "line",
        "state_dict": result.model.state_dict(),
        "model_config": result.config.model.to_dict(),
        "train_config": result.config.to_dict(),
        "preprocessing": LINE_PREPROCESSING,
        "test_exact": result.exact,
        "seconds": result.seconds,
        "torch": torch.__version__,
        "python": platform.python_version(),
        **extra,
    }


def save_lines(path: Path, result: LineTrainResult, **extra: Any) -> str:
    """Write the line checkpoint (tensors and plain values only, atomically); its sha256."""
    return save_checkpoint(path, line_payload(result, **extra))


def carry_lines(classifier: Path, lines: Path, out: Path) -> str:
    """Write `classifier`'s checkpoint to `out` carrying the line model of `lines` (a
    version that reads with its own line model); returns its sha256."""
    body = load_checkpoint(classifier)
    inner = line_body(load_checkpoint(lines), lines)
    body[LINES_KEY] = inner
    own, theirs = body.get("version") or classifier.stem, inner.get("version") or lines.stem
    body["version"] = f"{own}+{theirs}"
    return save_checkpoint(out, body)
