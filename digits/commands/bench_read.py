"""`digits bench read`: the reader's accuracy and latency on synthetic and real photos."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks.read import (
    CEILINGS,
    PhotoScores,
    Score,
    bench_fields,
    bench_photos,
    bench_synthetic,
    failure_sheet,
    leave_one_source_out,
    load_photos,
)
from digits.settings import Settings


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--synthetic", type=int, default=500, help="synthetic photos (0: skip)")
    parser.add_argument(
        "--seed",
        type=int,
        action="append",
        help="seed of the synthetic photos and fields (default 1234); repeat it to read "
        "several draws and report each, then their mean and range",
    )
    parser.add_argument(
        "--fields",
        type=int,
        default=0,
        help="numbers cut from forms to read (boxes, walls, separators, guilloche; 0: skip)",
    )
    parser.add_argument("--model", type=Path, help="checkpoint (default: shipped model)")
    parser.add_argument(
        "--choose-model",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="also read the real photos with this classifier (repeatable) and report the "
        "choice between it and --model leave-one-source-out",
    )
    parser.add_argument("--segmenter", type=Path, help="segmenter checkpoint (default: shipped)")
    parser.add_argument(
        "--choose-segmenter",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="also read the real photos with this segmenter (repeatable) and report the "
        "choice between it and --segmenter leave-one-source-out",
    )
    parser.add_argument(
        "--lines",
        help="line model checkpoint (default: shipped; none: read without a line model)",
    )
    parser.add_argument(
        "--choose-lines",
        action="append",
        default=[],
        metavar="PATH",
        help="also read the real photos with this line model (a path, or none; repeatable) "
        "and report the choice between it and --lines leave-one-source-out",
    )
    parser.add_argument("--mnist-dir", type=Path)
    parser.add_argument("--devsets-dir", type=Path)
    parser.add_argument("--no-photos", action="store_true", help="skip the real photos")
    parser.add_argument("--failures", action="store_true", help="list misread images")
    parser.add_argument(
        "--failure-sheet",
        type=Path,
        metavar="PNG",
        help="also draw the misread real photos, boxed as read (wrong digits in red), "
        "into one picture",
    )
    parser.add_argument("--json", action="store_true", help="print the summaries as JSON")
    parser.add_argument(
        "--tilt",
        type=float,
        default=0.0,
        metavar="DEGREES",
        help="also read the photos turned by ±DEGREES, alternately (a page photographed askew)",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    import torch

    from vision.reader import DigitReader

    sheet = args.failure_sheet
    if sheet and (args.no_photos or not sheet.parent.is_dir()):
        why = "it draws the real photos" if args.no_photos else f"{sheet.parent} is no folder"
        raise SystemExit(f"digits bench read: --failure-sheet {sheet}: {why}")
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    model = args.model or settings.model_path
    seg_kwargs: dict[str, Any] = {"segmenter": args.segmenter} if args.segmenter else {}
    if args.lines:
        seg_kwargs["lines"] = _lines_path(args.lines)
    reader = DigitReader.load(model, **seg_kwargs)
    # Warm up (first-call allocations are not what a running bot pays).
    reader.read(np.full((64, 64), 255, np.uint8))
    scores: list[tuple[Score, str]] = []  # each with the name it is printed under
    photos: PhotoScores | None = None
    seeds = args.seed or [1234]
    drawn: dict[str, list[Score]] = {}  # per set, one score per seed
    if args.synthetic > 0 or args.fields > 0:
        from training.data.mnist import load_mnist

        _, test = load_mnist(args.mnist_dir or settings.mnist_dir, allow_download=False)
        for seed in seeds:
            sets = []
            if args.synthetic > 0:
                sets += bench_synthetic(reader, test, args.synthetic, seed, args.tilt)
            if args.fields > 0:
                sets += bench_fields(reader, test, args.fields, seed)
            for score in sets:
                drawn.setdefault(score.name, []).append(score)
                label = f"{score.name} (seed {seed})" if len(seeds) > 1 else score.name
                scores.append((score, label))
    if not args.no_photos:
        devsets = args.devsets_dir or settings.devsets_dir or Path("../shared/devsets")
        photos = bench_photos(reader, devsets, args.tilt)
        scores.extend((score, score.name) for score in photos.main_scores())
    for s, label in scores:
        summary = {**s.summary(), "set": label}
        if args.json:
            print(json.dumps(summary))
            continue
        ceiling = s.name in CEILINGS
        print(_line(summary, ceiling=ceiling, width=32 if len(seeds) > 1 else 20))
        if args.failures and not ceiling:
            for name, expected, got in s.failures:
                print(f"    {name}: expected {expected!r} got {got!r}")
    if len(seeds) > 1:
        _print_spread(drawn, seeds, as_json=args.json)
    if photos is not None:
        if sheet:
            n = failure_sheet(load_photos(devsets), photos.misread, sheet)
            print(
                f"{n} misread photos drawn into {sheet}" if n else "no photo misread: no sheet",
                file=sys.stderr,
            )
        _print_breakdown(photos, as_json=args.json)
        if args.choose_model or args.choose_segmenter or args.choose_lines:
            _print_choice(args, reader, photos, devsets)
    return 0


def _print_spread(drawn: dict[str, list[Score]], seeds: list[int], *, as_json: bool) -> None:
    """Each synthetic set over the seeds: the mean and the range of its accuracies."""
    if not as_json:
        print(f"\nover {len(seeds)} seeds ({', '.join(map(str, seeds))}):")
    for name, runs in drawn.items():
        exact = [r.summary()["exact"] for r in runs]
        digits = [r.summary()["digit_accuracy"] for r in runs]
        if as_json:
            print(json.dumps({"set": name, "seeds": seeds, "exact": exact, "digits": digits}))
            continue
        print(
            f"  {name[:20]:<20} exact {np.mean(exact):7.2%} ({min(exact):.2%}–{max(exact):.2%})"
            f"  digits {np.mean(digits):7.2%} ({min(digits):.2%}–{max(digits):.2%})"
        )


def _lines_path(value: str) -> Path | None:
    return None if value.lower() == "none" else Path(value)


def _print_choice(args: argparse.Namespace, reader: Any, photos: PhotoScores, devsets) -> None:
    """The reader picked on all sources but one, scored on that one (and aggregated)."""
    from vision.reader import DigitReader

    name = (
        f"classifier {args.model or 'shipped'}, segmenter {args.segmenter or 'shipped'}, "
        f"line model {args.lines or 'shipped'}"
    )
    settings = {name: photos.by_source}
    for path in args.choose_model:
        other = DigitReader.load(path, segmenter=reader.segmenter, lines=reader.lines)
        settings[f"classifier {path}"] = bench_photos(other, devsets).by_source
    for path in args.choose_segmenter:
        other = DigitReader.load(reader.classifier, segmenter=path, lines=reader.lines)
        settings[f"segmenter {path}"] = bench_photos(other, devsets).by_source
    for value in args.choose_lines:
        other = DigitReader.load(
            reader.classifier, segmenter=reader.segmenter, lines=_lines_path(value)
        )
        settings[f"line model {value}"] = bench_photos(other, devsets).by_source
    loso = leave_one_source_out(settings)
    if args.json:
        print(json.dumps({"leave_one_source_out": vars(loso)}))
        return
    print("\nreader chosen leave-one-source-out:")
    for name, exact in loso.all_sources.items():
        picked = sum(1 for v in loso.chosen.values() if v == name)
        print(f"  {name}: exact {exact:.2%} on all sources; picked for {picked} held-out sources")
    print(f"  held-out exact {loso.exact:.2%}, mean over sources {loso.source_mean:.2%}")


def _line(summary: dict[str, Any], *, ceiling: bool = False, width: int = 20) -> str:
    line = (
        f"{summary['set'][:width]:<{width}} n={summary['images']:<4} "
        f"digits {summary['digit_accuracy']:7.2%}  exact {summary['exact']:7.2%}  "
    )
    if ceiling:
        return line + "(the classifier alone on the pristine MNIST digits of these photos)"
    return line + (
        f"exact+layout {summary['exact_layout']:7.2%}  "
        f"count {summary['digit_count_accuracy']:7.2%}  "
        f"p50 {summary['p50_ms']:6.1f} ms  p95 {summary['p95_ms']:6.1f} ms"
    )


def _print_breakdown(photos: PhotoScores, *, as_json: bool) -> None:
    """The real photos per kind and per source, and the mean over sources."""
    groups = [("kind", photos.by_kind), ("source", photos.by_source)]
    mean = {
        "set": "mean over sources",
        "sources": len(photos.by_source),
        "exact": photos.source_mean("exact"),
        "digit_accuracy": photos.source_mean("digit_accuracy"),
    }
    if as_json:
        for group, scores in groups:
            for score in scores.values():
                print(json.dumps({"group": group, **score.summary()}))
        print(json.dumps(mean))
        print(json.dumps({"set": "which reading is right", **_attribution(photos)}))
        return
    for group, scores in groups:
        print(f"\nreal photos by {group}:")
        for score in sorted(scores.values(), key=lambda s: (-s.n, s.name)):
            print("  " + _line(score.summary(), width=44))
    print(
        f"\nmean over {mean['sources']} sources: exact {mean['exact']:.2%}, "
        f"digits {mean['digit_accuracy']:.2%}"
    )
    counts = _attribution(photos)
    print(
        f"\nwhich reading is right, over the {sum(counts.values())} digits of the photos read "
        "with the right count on every line:"
    )
    for name, n in counts.items():
        print(f"  {name:<58} {n:>6}")


def _attribution(photos: PhotoScores) -> dict[str, int]:
    """The digits by which of the two readings (classifier, line model) and their product
    are right, most common first."""

    def right(ok: bool | None) -> str:
        return "right" if ok else "wrong"

    named: dict[str, int] = {}
    for (clf, line, product), n in photos.attribution.most_common():
        line_name = "no line reading" if line is None else f"line model {right(line)}"
        named[f"classifier {right(clf)}, {line_name}: product {right(product)}"] = n
    return named
