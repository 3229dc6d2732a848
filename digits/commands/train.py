"""`digits train`: train a CNN on MNIST and write a checkpoint (atomically)."""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from digits.settings import Settings
from training.data.augment import AugmentConfig
from training.data.mnist import load_mnist
from training.data.pairs import MULTI_LABEL, touching_pairs
from training.data.reader_crops import CropSet
from training.train import TrainConfig, save_result, train
from vision.checkpoint import load_checkpoint
from vision.model import DIGIT_CLASSES, ModelConfig

log = logging.getLogger(__name__)


def register(parser: argparse.ArgumentParser) -> None:
    defaults = TrainConfig()
    parser.add_argument("--out", type=Path, default=Path("runs/model.pt"), help="checkpoint path")
    parser.add_argument("--mnist-dir", type=Path, help="folder with the four MNIST .gz files")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--device", help="cpu, cuda, cuda:N (default: CUDA when present)")
    parser.add_argument("--threads", type=int, help="CPU threads for PyTorch")
    parser.add_argument("--no-augment", action="store_true", help="train on plain MNIST")
    parser.add_argument(
        "--channels", type=int, nargs=3, default=list(ModelConfig().channels), metavar="C"
    )
    parser.add_argument("--hidden", type=int, default=ModelConfig().hidden)
    parser.add_argument("--version", help="version name stored in the checkpoint")
    parser.add_argument("--limit", type=int, help="use only the first N training images")
    parser.add_argument("--evals-per-epoch", type=int, default=1)
    parser.add_argument(
        "--init", type=Path, help="start from this checkpoint's weights (fine-tuning)"
    )
    parser.add_argument(
        "--p-clean",
        type=float,
        default=AugmentConfig().p_clean,
        help="share of samples left un-augmented",
    )
    parser.add_argument("--warmup", type=float, default=TrainConfig().warmup)
    parser.add_argument(
        "--crops",
        type=Path,
        help="add reader-cut crops (from `digits crops`) to the MNIST training images",
    )
    parser.add_argument(
        "--crops-repeat",
        type=int,
        default=1,
        metavar="N",
        help="with --crops: each crop N times per epoch (they are few beside MNIST)",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=0,
        metavar="N",
        help="add N touching pairs of MNIST train digits as an 11th class, "
        '"not one digit" (how the reader\'s segmenter is trained)',
    )
    parser.add_argument(
        "--multi-weight",
        type=float,
        default=0.15,
        help="with --pairs: how much the pair class counts when the model reads "
        "(pairs are rarer on a page than in training)",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.pairs < 0 or not args.multi_weight > 0 or args.crops_repeat < 1:
        raise SystemExit("--pairs must be ≥ 0, --multi-weight positive, --crops-repeat ≥ 1")
    train_split, test_split = load_mnist(args.mnist_dir or settings.mnist_dir)
    images, labels = train_split.images, train_split.labels
    if args.limit:
        images, labels = images[: args.limit], labels[: args.limit]
    data = {"mnist_train": len(images), "mnist_test": len(test_split.images)}
    if args.crops:
        crops = CropSet.load(args.crops)
        if (crops.labels >= DIGIT_CLASSES).any() and not args.pairs:
            raise SystemExit(
                f'{args.crops} holds "not one digit" crops (from --fields): train with --pairs'
            )
        images = np.concatenate([images, *[crops.images] * args.crops_repeat])
        labels = np.concatenate([labels, *[crops.labels] * args.crops_repeat])
        data["reader_crops"] = len(crops.labels)
    if args.pairs:
        pairs = touching_pairs(train_split.images, train_split.labels, args.pairs, args.seed)
        images = np.concatenate([images, pairs])
        labels = np.concatenate([labels, np.full(len(pairs), MULTI_LABEL, labels.dtype)])
        data["touching_pairs"] = len(pairs)
    init_state = None
    model_config = ModelConfig(channels=tuple(args.channels), hidden=args.hidden)
    if args.init:
        body = load_checkpoint(args.init)
        init_state = body["state_dict"]
        model_config = ModelConfig.from_dict(body["model_config"])
    classes = DIGIT_CLASSES + 1 if args.pairs else DIGIT_CLASSES
    if args.init and model_config.classes > classes:
        raise SystemExit(f"{args.init} has a pair class: fine-tune it with --pairs")
    model_config = replace(model_config, classes=classes)
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        threads=args.threads,
        augment=not args.no_augment,
        model=model_config,
        evals_per_epoch=args.evals_per_epoch,
        warmup=args.warmup,
        augment_config=AugmentConfig(p_clean=args.p_clean),
        multi_weight=args.multi_weight if args.pairs else 1.0,
    )
    result = train(
        config, images, labels, test_split.images, test_split.labels, init_state=init_state
    )
    version = args.version or args.out.stem
    sha = save_result(
        args.out,
        result,
        version=version,
        data=data,
        parent=str(args.init) if args.init else None,
    )
    summary = {
        "checkpoint": str(args.out),
        "sha256": sha,
        "mnist_test_accuracy": result.test_accuracy,
        "seconds": round(result.seconds, 1),
    }
    print(json.dumps(summary, indent=2))
    return 0
