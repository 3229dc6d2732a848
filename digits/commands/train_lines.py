"""`digits train lines`: train the line model on drawn form fields and photo lines."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from digits.settings import Settings
from training.data.fields import BACKGROUNDS
from training.data.lines import FieldKinds, LineSet, draw_empty_lines, draw_lines
from training.data.mnist import load_mnist
from training.lines import LineTrainConfig, save_lines, train_lines
from vision.checkpoint import load_checkpoint
from vision.line_model import LineConfig


def register(parser: argparse.ArgumentParser) -> None:
    defaults = LineTrainConfig()
    parser.add_argument("--out", type=Path, default=Path("runs/lines.pt"), help="checkpoint path")
    parser.add_argument("--mnist-dir", type=Path, help="folder with the four MNIST .gz files")
    parser.add_argument("--lines", type=int, default=120_000, help="training bands to draw")
    parser.add_argument(
        "--photo-share", type=float, default=1 / 3, help="share of them that are photo lines"
    )
    parser.add_argument(
        "--backgrounds",
        nargs="+",
        choices=BACKGROUNDS,
        help="draw form fields of these kinds only (default: all)",
    )
    parser.add_argument(
        "--no-separators", action="store_true", help="no separators between digit groups"
    )
    parser.add_argument(
        "--european",
        type=float,
        default=FieldKinds().european,
        help="share of the fields' 1s and 7s drawn European",
    )
    parser.add_argument(
        "--empty-fields",
        type=int,
        default=0,
        help="draw this many more form fields and add the bands of their lines that hold "
        "no digit (texture, rules), labelled empty",
    )
    parser.add_argument("--test-lines", type=int, default=1000, help="bands to report on")
    parser.add_argument("--data", type=Path, help="cache of the drawn bands (.npz): reused")
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--threads", type=int, help="CPU threads for PyTorch")
    parser.add_argument("--device", help="cpu, cuda, cuda:N (default: CUDA when present)")
    parser.add_argument("--workers", type=int, default=2, help="processes drawing bands")
    parser.add_argument(
        "--channels", type=int, nargs=4, default=list(LineConfig().channels), metavar="C"
    )
    parser.add_argument("--hidden", type=int, default=LineConfig().hidden)
    parser.add_argument("--init", type=Path, help="start from this line checkpoint's weights")
    parser.add_argument("--version", help="version name stored in the checkpoint")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.lines < 1 or args.test_lines < 1 or args.steps < 1 or args.empty_fields < 0:
        raise SystemExit(
            "--lines, --test-lines and --steps must be at least 1, --empty-fields at least 0"
        )
    train_split, test_split = load_mnist(args.mnist_dir or settings.mnist_dir)
    backgrounds = tuple(args.backgrounds) if args.backgrounds else None
    kinds = FieldKinds(backgrounds, separators=not args.no_separators, european=args.european)
    if args.data and args.data.is_file():
        train = LineSet.load(str(args.data))
    else:
        train = draw_lines(
            (train_split.images, train_split.labels),
            args.lines,
            args.seed,
            photo_share=args.photo_share,
            kinds=kinds,
            workers=args.workers,
        )
        if args.empty_fields:
            train = train + draw_empty_lines(
                (train_split.images, train_split.labels),
                args.empty_fields,
                args.seed,
                kinds=kinds,
                workers=args.workers,
            )
        if args.data:
            train.save(str(args.data))
    # Reported on MNIST *test* digits, drawn the same way with another seed.
    test = draw_lines(
        (test_split.images, test_split.labels),
        args.test_lines,
        args.seed + 99,
        photo_share=args.photo_share,
        kinds=kinds,
    )
    model = LineConfig(channels=tuple(args.channels), hidden=args.hidden)
    init = None
    if args.init:
        body = load_checkpoint(args.init)
        init, model = body["state_dict"], LineConfig.from_dict(body["model_config"])
    config = LineTrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        threads=args.threads,
        device=args.device,
        model=model,
    )
    result = train_lines(config, train, test, init=init)
    sha = save_lines(
        args.out,
        result,
        version=args.version or args.out.stem,
        data={
            "lines": len(train),
            "photo_share": args.photo_share,
            "backgrounds": list(backgrounds or BACKGROUNDS),
            "separators": kinds.separators,
            "european": kinds.european,
            "empty_fields": args.empty_fields,
            "digits": "MNIST train",
        },
        parent=str(args.init) if args.init else None,
    )
    print(
        json.dumps(
            {
                "checkpoint": str(args.out),
                "sha256": sha,
                "test_exact": round(result.exact, 4),
                "seconds": round(result.seconds, 1),
            },
            indent=2,
        )
    )
    return 0
