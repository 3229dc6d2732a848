"""`digits crops`: training crops cut by the reader from photos of MNIST train digits."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from digits.settings import Settings
from training.data.mnist import load_mnist
from training.data.reader_crops import make_crops


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="output .npz (images, labels)")
    parser.add_argument("--pages", type=int, default=2000, help="synthetic photos to read")
    parser.add_argument("--cells", type=int, default=3000, help="small form cells to read")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", help="reader's classifier checkpoint (default: shipped)")
    parser.add_argument("--mnist-dir", type=Path)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)


def run(args: argparse.Namespace, settings: Settings) -> int:
    train_split, _ = load_mnist(args.mnist_dir or settings.mnist_dir)
    crops = make_crops(
        (train_split.images, train_split.labels),
        pages=args.pages,
        cells=args.cells,
        seed=args.seed,
        model=args.model,
        workers=args.workers,
    )
    crops.save(args.out)
    print(f"{args.out}: {len(crops.labels)} crops from {crops.drawn} drawn digits")
    return 0
