"""`digits train-junk`: fit the reader's junk filter on drawn form crops (MNIST train)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from digits.settings import Settings
from training.data.mnist import load_mnist
from training.junk import fit_junk_filter, junk_dataset
from vision.checkpoint import save_checkpoint


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("runs/junk.pt"), help="checkpoint path")
    parser.add_argument("--fields", type=int, default=1500, help="drawn form crops to cut")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--l2", type=float, default=1e-3)
    parser.add_argument(
        "--threshold", type=float, default=0.5, help="drop a shape at least this likely junk"
    )
    parser.add_argument("--segmenter", help="segmenter checkpoint (default: shipped)")
    parser.add_argument("--mnist-dir", type=Path)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.fields < 1 or not 0 < args.threshold < 1:
        raise SystemExit("--fields must be ≥ 1 and --threshold between 0 and 1")
    train_split, _ = load_mnist(args.mnist_dir or settings.mnist_dir)
    x, y = junk_dataset(
        (train_split.images, train_split.labels),
        args.fields,
        seed=args.seed,
        segmenter=args.segmenter,
        workers=args.workers,
    )
    model = fit_junk_filter(x, y, l2=args.l2, threshold=args.threshold)
    predicted = model.probability(x) >= model.threshold
    summary = {
        "rows": len(y),
        "junk_rows": int(y.sum()),
        "train_junk_recall": float(predicted[y == 1].mean()),
        "train_digits_dropped": float(predicted[y == 0].mean()),
    }
    sha = save_checkpoint(
        args.out,
        model.payload(
            version="junk-v1",
            train_config={
                "fields": args.fields,
                "seed": args.seed,
                "l2": args.l2,
                "segmenter": args.segmenter or "shipped",
            },
            metrics={k: float(v) for k, v in summary.items()},
        ),
    )
    print(json.dumps({"checkpoint": str(args.out), "sha256": sha, **summary}, indent=2))
    return 0
