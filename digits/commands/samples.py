"""`digits samples`: regenerate the synthetic sample photos and their expected readings."""

from __future__ import annotations

import argparse
from pathlib import Path

from digits.settings import Settings
from training.data.synth import log, write_samples


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out_dir", type=Path, nargs="?", default=Path("samples"))
    parser.add_argument("-n", type=int, default=6, help="how many photos (default 6)")
    parser.add_argument("--mnist-dir", type=Path, default=None)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """`digits samples [OUT_DIR]`: regenerate the sample photos and their expected.csv."""
    from training.data.mnist import load_mnist

    _, test = load_mnist(args.mnist_dir or settings.mnist_dir)
    write_samples(args.out_dir, test, n=args.n)
    log.info("wrote %d sample photos and expected.csv to %s", args.n, args.out_dir)
    return 0
