"""`digits crops`: training crops cut by the reader from photos of MNIST train digits."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from digits.settings import Settings
from training.data.fields import not_digit_crops
from training.data.mnist import load_mnist
from training.data.pairs import MULTI_LABEL
from training.data.reader_crops import CropSet, make_crops


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="output .npz (images, labels)")
    parser.add_argument("--pages", type=int, default=2000, help="synthetic photos to read")
    parser.add_argument("--cells", type=int, default=3000, help="small form cells to read")
    parser.add_argument(
        "--fields",
        type=int,
        default=0,
        help="numbers cut from forms to read (training/data/fields.py): what the reader cuts "
        'there that is no drawn digit becomes the "not one digit" class (train with --pairs)',
    )
    parser.add_argument("--segmenter", help="reader's segmenter checkpoint (default: shipped)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", help="reader's classifier checkpoint (default: shipped)")
    parser.add_argument("--mnist-dir", type=Path)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if min(args.pages, args.cells, args.fields) < 0 or not (
        args.pages or args.cells or args.fields
    ):
        raise SystemExit("--pages, --cells and --fields must be ≥ 0, and not all 0")
    train_split, _ = load_mnist(args.mnist_dir or settings.mnist_dir)
    crops = CropSet(np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64), 0)
    if args.pages or args.cells:
        crops = make_crops(
            (train_split.images, train_split.labels),
            pages=args.pages,
            cells=args.cells,
            seed=args.seed,
            model=args.model,
            workers=args.workers,
        )
    if args.fields:
        junk, good, labels = not_digit_crops(
            (train_split.images, train_split.labels),
            args.fields,
            seed=args.seed,
            segmenter=args.segmenter,
            workers=args.workers,
        )
        crops = CropSet(
            np.concatenate([crops.images, good, junk]),
            np.concatenate([crops.labels, labels, np.full(len(junk), MULTI_LABEL, np.int64)]),
            crops.drawn,
        )
        print(
            f"{len(junk)} not-a-digit crops and {len(labels)} digit crops from {args.fields} fields"
        )
    crops.save(args.out)
    print(f"{args.out}: {len(crops.labels)} crops from {crops.drawn} drawn digits")
    return 0
