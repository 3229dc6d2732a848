"""`digits bench classify`: digits/s at batch 512 and ms/digit at batch 1, on CPU."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from digits.settings import Settings
from vision import DigitClassifier


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, help="checkpoint (default: the shipped model)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="PyTorch CPU threads (default: all cores)")
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")


def _measure(clf: DigitClassifier, images: np.ndarray, seconds: float) -> tuple[float, int]:
    clf.classify(images)  # warm-up
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        clf.classify(images)
        count += len(images)
    return elapsed, count


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    clf = DigitClassifier.load(args.model or settings.model_path, device=args.device)
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, size=(512, 28, 28), dtype=np.uint8)
    elapsed, count = _measure(clf, batch, args.seconds)
    per_second = count / elapsed
    elapsed1, count1 = _measure(clf, batch[:1], args.seconds)
    result = {
        "device": str(clf.device),
        "threads": torch.get_num_threads(),
        "model": clf.version,
        "batch512_digits_per_s": round(per_second),
        "batch1_ms_per_digit": round(elapsed1 / count1 * 1000, 3),
        "targets": {"batch512_digits_per_s": ">= 5000", "batch1_ms_per_digit": "<= 2"},
    }
    print(json.dumps(result, indent=2))
    return 0
