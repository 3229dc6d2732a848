"""`digits export OUT_DIR`: the collected handwriting as a dataset (see training.export)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from digits.settings import Settings


def _date(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", nargs="?", help="folder to create (must not exist)")
    parser.add_argument("--out", dest="out_option", help="the same, as an option")
    parser.add_argument(
        "--formats",
        "--format",
        default="idx,npz,png,csv,parquet",
        help="comma-separated: idx, npz, png, csv, parquet (default: all)",
    )
    parser.add_argument("--since", type=_date, help="only digits labelled since this date")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--only-corrections", action="store_true", help="corrected + aligned")
    group.add_argument("--only-confirmed", action="store_true", help="confirmed readings only")
    parser.add_argument(
        "--min-per-class", type=int, default=0, help="leave out classes with fewer digits"
    )
    parser.add_argument("--licence", help="licence text for the datasheet")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    import db
    from training.export import DEFAULT_LICENCE, ExportError, collect, export, new_salt

    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    target = args.out or args.out_option
    if not target or (args.out and args.out_option and args.out != args.out_option):
        sys.stderr.write("digits export: give the output folder once (OUT or --out OUT)\n")
        return 2
    salt = settings.export_salt or new_salt()
    try:
        with db.open_database(settings.db_url) as factory, db.session_scope(factory) as session:
            dataset = collect(
                session,
                salt=salt,
                since=args.since,
                only_corrections=args.only_corrections,
                only_confirmed=args.only_confirmed,
                min_per_class=args.min_per_class,
                holdout_fraction=settings.retrain_holdout_fraction,
            )
        out = export(
            dataset,
            Path(target),
            formats,
            licence=args.licence or DEFAULT_LICENCE,
            stable_salt=bool(settings.export_salt),
            progress=sys.stderr.isatty(),
        )
    except ExportError as exc:
        sys.stderr.write(f"digits export: {exc}\n")
        return 2
    if not settings.export_salt:  # said once the export is made, never above an error
        sys.stderr.write(
            "digits export: DIGITS_EXPORT_SALT is not set; a random salt was used, so writer "
            "pseudonyms will differ from one export to the next\n"
        )
    print(
        json.dumps(
            {
                "out": str(out),
                "train": len(dataset.train.labels),
                "test": len(dataset.test.labels),
                "formats": formats,
                "left_out_classes": dataset.dropped_classes,
            }
        )
    )
    return 0
