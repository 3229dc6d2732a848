"""`digits bench train`: wall seconds for `digits train` to first reach 99.0 % on MNIST test.

Uses the fast preset: plain MNIST (no augmentation), a large learning rate and frequent
test evaluations so the moment 99.0 % is crossed is seen. The figure is training time
(data on the device, forward, backward, optimiser); the evaluations that watch for the
target are timed apart and printed too, as is the whole wall clock.
"""

from __future__ import annotations

import argparse
import json

import torch

from digits.settings import Settings
from training.data.mnist import load_mnist
from training.train import TrainConfig, train
from vision.classifier import pick_device
from vision.model import ModelConfig


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mnist-dir")
    parser.add_argument("--device", help="cpu or cuda (default: CUDA when present)")
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--epochs", type=int, default=3, help="give up after this many epochs")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=4e-3)
    parser.add_argument("--evals-per-epoch", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)


def fast_config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup=0.1,
        label_smoothing=0.0,
        seed=args.seed,
        augment=False,
        model=ModelConfig(),
        device=args.device,
        target_accuracy=args.target,
        evals_per_epoch=args.evals_per_epoch,
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    train_split, test_split = load_mnist(args.mnist_dir or settings.mnist_dir)
    config = fast_config(args)
    result = train(
        config, train_split.images, train_split.labels, test_split.images, test_split.labels
    )
    device = pick_device(args.device)
    print(
        json.dumps(
            {
                "device": str(device),
                "cpu_threads": torch.get_num_threads(),
                "target": args.target,
                "seconds_to_target": (
                    round(result.seconds_to_target, 1) if result.seconds_to_target else None
                ),
                "reached": result.seconds_to_target is not None,
                "best_test_accuracy": max(p["test_accuracy"] for p in result.history),
                "wall_seconds": round(result.history[-1]["seconds"], 1) if result.history else None,
                "history": [{k: round(v, 4) for k, v in point.items()} for point in result.history],
            },
            indent=2,
        )
    )
    return 0 if result.seconds_to_target is not None else 1
