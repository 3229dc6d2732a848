"""`digits bench loop`: simulated users correct readings, then retrain; before and after."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

import db
from benchmarks.loop import simulate_photo_readings, simulate_users
from digits.settings import Settings
from vision.classifier import DigitClassifier
from vision.reader import DigitReader


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=int, default=40)
    # Long numbers (IBANs, account and reference numbers): with a good model most short
    # readings are right, and 2,000 corrected digits would need more handwriting than USPS has.
    parser.add_argument("--digits-per-reading", type=int, default=20)
    parser.add_argument("--corrected", type=int, default=2000, help="corrected digits to collect")
    parser.add_argument(
        "--photo-readings",
        type=int,
        default=100,
        help="extra readings as photos from the digits left over (exercises label recovery)",
    )
    parser.add_argument("--epochs", type=int, help="default: DIGITS_RETRAIN_EPOCHS")
    parser.add_argument("--lr", type=float, help="default: DIGITS_RETRAIN_LR")
    parser.add_argument("--user-fraction", type=float, help="default: DIGITS_RETRAIN_USER_FRACTION")
    parser.add_argument("--epoch-size", type=int, help="default: DIGITS_RETRAIN_EPOCH_SIZE")
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--device")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path, help="starting model (default: the shipped one)")
    parser.add_argument("--mnist-dir")
    parser.add_argument("--devsets-dir")
    parser.add_argument("--keep", type=Path, help="use this data dir and keep it (default: temp)")


def _acc(clf: DigitClassifier, images: np.ndarray, labels: np.ndarray) -> float:
    return float((clf.classify(images).argmax(1) == labels).mean())


def run(args: argparse.Namespace, settings: Settings) -> int:
    from digits.commands.retrain import config_from
    from training.data.devsets import load_usps
    from training.data.mnist import load_mnist
    from training.retrain import retrain

    t0 = time.perf_counter()
    devsets = Path(args.devsets_dir or settings.devsets_dir or "../shared/devsets")
    mnist_train, mnist_test = load_mnist(args.mnist_dir or settings.mnist_dir)
    usps_train, usps_test = load_usps(devsets, "train"), load_usps(devsets, "test")
    start_model = args.model or settings.model_path
    clf = DigitClassifier.load(start_model, device=args.device)
    timings: dict[str, float] = {"load": time.perf_counter() - t0}

    t = time.perf_counter()
    before = {
        "usps_test": _acc(clf, usps_test.images, usps_test.labels),
        "mnist_test": _acc(clf, mnist_test.images, mnist_test.labels),
    }
    timings["evaluate_before"] = time.perf_counter() - t
    print(f"start model {clf.version}: USPS test {100 * before['usps_test']:.2f} %, "
          f"MNIST test {100 * before['mnist_test']:.2f} %")  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="digits-bench-loop-") as tmp:
        data_dir = args.keep or Path(tmp)
        data_dir.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{(data_dir / 'digits.sqlite3').resolve()}"
        store = db.ImageStore(data_dir / "images")
        with db.open_database(url) as factory:
            t = time.perf_counter()
            sim = simulate_users(
                factory,
                clf,
                usps_train.images,
                usps_train.labels,
                users=args.users,
                digits_per_reading=args.digits_per_reading,
                target_corrected=args.corrected,
                seed=args.seed,
            )
            timings["simulate_users"] = time.perf_counter() - t
            print(
                f"{sim.users} users sent {sim.readings} readings ({sim.digits} digits): "
                f"{sim.confirmed_readings} confirmed, {sim.corrected_readings} corrected "
                f"= {sim.corrected_digits} corrected digits ({sim.wrong_digits} read wrong)"
            )
            photos = None
            if args.photo_readings:
                t = time.perf_counter()
                rest = np.setdiff1d(np.arange(len(usps_train.labels)), np.array(sim.used))
                rest = rest[: args.photo_readings * 6]
                photos = simulate_photo_readings(
                    factory,
                    DigitReader.load(clf),
                    store,
                    usps_train.images[rest],
                    usps_train.labels[rest],
                    users=sim.users,
                    seed=args.seed,
                )
                timings["photo_readings"] = time.perf_counter() - t
                print(
                    f"{photos.readings} photo readings: {photos.confirmed} confirmed, "
                    f"{photos.corrected_same_count} corrected (same digit count), "
                    f"{photos.corrected_other_count} corrected with another digit count"
                )
            config = config_from(args, settings)
            config.seed = args.seed
            t = time.perf_counter()
            outcome = retrain(
                factory,
                models_dir=data_dir / "models",
                mnist_train=(mnist_train.images, mnist_train.labels),
                mnist_test=(mnist_test.images, mnist_test.labels),
                config=config,
                images=store,
                default_model_path=start_model,
                progress=sys.stderr.isatty(),
            )
            timings["retrain"] = time.perf_counter() - t
            with db.session_scope(factory) as session:
                active = db.active_model_version(session)
                active_path = Path(active.path) if active else None
                cand_path = None
                if outcome.version:
                    cand_path = Path(db.get_model_version(session, outcome.version).path)
        t = time.perf_counter()
        after_clf = DigitClassifier.load(active_path, device=args.device)
        after = {
            "usps_test": _acc(after_clf, usps_test.images, usps_test.labels),
            "mnist_test": _acc(after_clf, mnist_test.images, mnist_test.labels),
        }
        candidate = None
        if cand_path is not None and cand_path != active_path:  # rejected: show it anyway
            cand = DigitClassifier.load(cand_path, device=args.device)
            candidate = {
                "usps_test": _acc(cand, usps_test.images, usps_test.labels),
                "mnist_test": outcome.candidate.mnist_test_accuracy if outcome.candidate else None,
            }
        timings["evaluate_after"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0

    usps_gain = 100 * (after["usps_test"] - before["usps_test"])
    mnist_drop = 100 * (before["mnist_test"] - after["mnist_test"])
    targets = {
        "usps_up_1pt_or_99": usps_gain >= 1.0 or after["usps_test"] >= 0.99,
        "mnist_drop_le_0.1pt": mnist_drop <= 0.1 + 1e-9,
        "corrected_digits_2000": sim.corrected_digits >= 2000,
        "under_10_min": timings["total"] < 600,
    }
    print(f"retrain: {outcome.status} ({outcome.reason})")
    if outcome.recovery:
        r = outcome.recovery
        print(
            f"label recovery: {r['recovered']} of {r['attempted']} review readings recovered "
            f"({r['failed']} could not be re-segmented, {r['disagreed']} disagreed); "
            f"corrected readings yielding labels: {r['labelled_without_recovery']} of "
            f"{r['corrected_readings']} without recovery, {r['labelled_with_recovery']} with"
        )
    print(f"{'':<12} {'before':>8} {'after':>8} {'change':>8}")
    for key, name in (("usps_test", "USPS test"), ("mnist_test", "MNIST test")):
        delta = 100 * (after[key] - before[key])
        print(f"{name:<12} {100 * before[key]:>7.2f}% {100 * after[key]:>7.2f}% {delta:>+7.2f}pt")
    if candidate:
        print(f"(rejected candidate: USPS test {100 * candidate['usps_test']:.2f} %)")
    print("timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
    print("targets: " + ", ".join(f"{k} {'ok' if v else 'MISSED'}" for k, v in targets.items()))
    summary = {
        "before": before,
        "after": after,
        "rejected_candidate": candidate,
        "simulation": sim.to_dict(),
        "photo_readings": asdict(photos) if photos else None,
        "retrain": outcome.to_dict(),
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "targets": targets,
    }
    print(json.dumps(summary, separators=(",", ":")))
    return 0 if all(targets.values()) else 1
