"""`digits evaluate`: MNIST test + every devset; terminal table, JSON, PNG plots."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from digits.settings import Settings
from training.data.devsets import load_all
from training.data.mnist import load_mnist
from training.evaluate.metrics import classification_report
from vision import DigitClassifier

log = logging.getLogger(__name__)


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, help="checkpoint (default: the shipped model)")
    parser.add_argument("--mnist-dir", type=Path)
    parser.add_argument("--devsets-dir", type=Path, help="folder with usps/ and hwd1000/")
    parser.add_argument("--out", type=Path, default=Path("reports"), help="JSON and PNG folder")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--device")


def evaluate_sets(
    clf: DigitClassifier, sets: list[tuple[str, np.ndarray, np.ndarray]]
) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """Reports and probabilities per named set."""
    reports, probs = {}, {}
    for name, images, labels in sets:
        probs[name] = clf.classify(images)
        reports[name] = classification_report(labels, probs[name])
    return reports, probs


def format_report(name: str, report: dict[str, Any]) -> str:
    lines = [
        f"{name}: accuracy {report['accuracy'] * 100:.2f} % "
        f"({report['errors']} errors / {report['samples']}), macro F1 {report['macro_f1']:.4f}",
        "  class  precision  recall   f1      support  roc_auc",
    ]
    for row in report["per_class"]:
        lines.append(
            f"  {row['class']:>5}  {row['precision']:.4f}     {row['recall']:.4f}   "
            f"{row['f1']:.4f}  {row['support']:>7}  {row['roc_auc']:.5f}"
        )
    lines.append("  confusion matrix (rows true, columns predicted):")
    lines.extend("    " + " ".join(f"{v:>5}" for v in row) for row in report["confusion_matrix"])
    return "\n".join(lines)


def run(args: argparse.Namespace, settings: Settings) -> int:
    clf = DigitClassifier.load(args.model or settings.model_path, device=args.device)
    _, test = load_mnist(args.mnist_dir or settings.mnist_dir)
    sets = [("mnist-test", test.images, test.labels)]
    devsets_dir = args.devsets_dir or settings.devsets_dir
    if devsets_dir:
        sets += [(d.name, d.images, d.labels) for d in load_all(devsets_dir)]
    else:
        log.warning("no devsets directory (DIGITS_DEVSETS_DIR / --devsets-dir): MNIST only")
    reports, probs = evaluate_sets(clf, sets)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, images, labels in sets:
        sys.stdout.write(format_report(name, reports[name]) + "\n\n")
        if not args.no_plots:
            from training.evaluate import plots

            plots.confusion(
                np.array(reports[name]["confusion_matrix"]),
                args.out / f"{name}-confusion.png",
                name,
            )
            plots.curves(labels, probs[name], args.out / f"{name}-roc.png", name, "roc")
            plots.curves(labels, probs[name], args.out / f"{name}-pr.png", name, "pr")
            plots.worst_errors(images, labels, probs[name], args.out / f"{name}-worst.png", name)
    summary = {
        "model": str(clf.path),
        "version": clf.version,
        "sha256": clf.sha256,
        "sets": reports,
    }
    (args.out / "metrics.json").write_text(json.dumps(summary, indent=1))
    sys.stdout.write(
        "summary: "
        + ", ".join(f"{name} {r['accuracy'] * 100:.2f} %" for name, r in reports.items())
        + f"\nwrote {args.out / 'metrics.json'}\n"
    )
    return 0
