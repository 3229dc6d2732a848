"""`digits retrain`: one run of the learning loop, safe to call from cron or the bot.

Exit codes: 0 the run finished (promoted, rejected or skipped), 1 it failed, 75 another
retrain holds the lock. The last line on stdout is a one-line JSON summary to relay.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys

from digits.settings import Settings

log = logging.getLogger(__name__)

EXIT_FAILED = 1
EXIT_LOCKED = 75  # EX_TEMPFAIL: try again later


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, help="default: DIGITS_RETRAIN_EPOCHS")
    parser.add_argument("--lr", type=float, help="peak learning rate (DIGITS_RETRAIN_LR)")
    parser.add_argument(
        "--user-fraction", type=float, help="share of each epoch from users' digits"
    )
    parser.add_argument("--epoch-size", type=int, help="samples per epoch (0: auto)")
    parser.add_argument(
        "--line-steps", type=int, help="line-model fine-tuning steps (DIGITS_RETRAIN_LINE_STEPS)"
    )
    parser.add_argument("--min-new-labels", type=int, help="skip below this many new labels")
    parser.add_argument("--force", action="store_true", help="run even with few new labels")
    parser.add_argument("--no-augment", action="store_true", help="fine-tune without augmentation")
    parser.add_argument("--no-recover", action="store_true", help="skip label recovery")
    parser.add_argument("--device", help="cpu, cuda, cuda:N (default: CUDA when present)")
    parser.add_argument("--threads", type=int, help="CPU threads for PyTorch")
    parser.add_argument("--mnist-dir", help="folder with the MNIST .gz files")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def config_from(args: argparse.Namespace, settings: Settings):  # -> RetrainConfig
    from training.retrain import RetrainConfig

    def pick(value, default):
        return default if value is None else value

    return RetrainConfig(
        epochs=pick(getattr(args, "epochs", None), settings.retrain_epochs),
        lr=pick(getattr(args, "lr", None), settings.retrain_lr),
        user_fraction=pick(getattr(args, "user_fraction", None), settings.retrain_user_fraction),
        min_new_labels=pick(getattr(args, "min_new_labels", None), settings.retrain_min_new_labels),
        max_mnist_drop=settings.promote_max_mnist_drop,
        min_user_gain=settings.promote_min_user_gain,
        min_gain_digits=settings.promote_min_gain_digits,
        max_p_value=settings.promote_max_p_value,
        holdout_fraction=settings.retrain_holdout_fraction,
        epoch_size=pick(getattr(args, "epoch_size", None), settings.retrain_epoch_size),
        line_steps=pick(getattr(args, "line_steps", None), settings.retrain_line_steps),
        line_lr=settings.retrain_line_lr,
        augment=not getattr(args, "no_augment", False),
        device=getattr(args, "device", None),
        threads=getattr(args, "threads", None),
        recover_labels=not getattr(args, "no_recover", False),
        force=bool(getattr(args, "force", False)),
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    from training.runlock import LockHeld, RunLock

    lock = RunLock(settings.data_dir / "retrain.lock", "a retrain")
    try:
        lock.acquire()
    except LockHeld as exc:
        sys.stderr.write(f"digits retrain: {exc}\n")
        print(json.dumps({"status": "locked", "reason": str(exc)}))
        return EXIT_LOCKED
    # SIGTERM (systemd stop, the bot cancelling) unwinds like Ctrl-C, so the run is
    # recorded as failed; a SIGKILL cannot be caught, and the next run records it instead.
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _locked_run(args, settings)
    finally:
        signal.signal(signal.SIGTERM, previous)
        lock.release()


def on_error(message: str) -> None:
    """The dispatcher reported an error (a broken database, say): the summary still ends
    stdout, so that whoever relays it (cron, the bot) always has one to parse."""
    print(json.dumps({"status": "failed", "reason": message}))


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _locked_run(args: argparse.Namespace, settings: Settings) -> int:
    import db
    from training.data.mnist import MnistError, load_mnist
    from training.retrain import RetrainError, retrain

    try:
        config = config_from(args, settings)
        config.validate()
    except RetrainError as exc:
        sys.stderr.write(f"digits retrain: {exc}\n")
        print(json.dumps({"status": "failed", "reason": str(exc)}))
        return EXIT_FAILED
    with db.open_database(settings.db_url) as factory:
        try:
            train_split, test_split = load_mnist(args.mnist_dir or settings.mnist_dir)
        except MnistError as exc:
            sys.stderr.write(f"digits retrain: MNIST is needed for replay and the gate: {exc}\n")
            print(json.dumps({"status": "failed", "reason": str(exc)}))
            return EXIT_FAILED
        images = db.ImageStore(settings.images_dir if settings.store_images else None)
        try:
            outcome = retrain(
                factory,
                models_dir=settings.models_dir,
                mnist_train=(train_split.images, train_split.labels),
                mnist_test=(test_split.images, test_split.labels),
                config=config,
                images=images,
                default_model_path=settings.model_path,
                progress=not args.quiet and sys.stderr.isatty(),
            )
        except RetrainError as exc:
            sys.stderr.write(f"digits retrain: {exc}\n")
            print(json.dumps({"status": "failed", "reason": str(exc)}))
            return EXIT_FAILED
    message = outcome.reason
    if not message.startswith(outcome.status):
        message = f"{outcome.status}: {message}"
    sys.stderr.write(f"digits retrain: {message}\n")
    print(json.dumps(outcome.to_dict(), separators=(",", ":")))
    return EXIT_FAILED if outcome.status == "failed" else 0
