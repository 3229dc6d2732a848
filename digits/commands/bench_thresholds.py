"""`digits bench thresholds`: the hand-set numbers in the segmentation, per module."""

from __future__ import annotations

import argparse
import json

from benchmarks.thresholds import count_segment_thresholds
from digits.settings import Settings


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--list", action="store_true", help="print each number and its line")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    found = count_segment_thresholds()
    total = sum(len(v) for v in found.values())
    if args.json:
        print(json.dumps({"modules": {k: len(v) for k, v in found.items()}, "total": total}))
        return 0
    for module, numbers in found.items():
        print(f"{module:<12} {len(numbers):4}")
        if args.list:
            for t in numbers:
                print(f"    {t.line:4}: {t.value!r:<8} {t.source[:90]}")
    print(f"{'total':<12} {total:4}")
    return 0
