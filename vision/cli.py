"""`digits read IMAGE... [--json] [--annotate DIR]`: read handwritten numbers from files."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", type=Path, help="photos, scans or PDFs")
    parser.add_argument("--json", action="store_true", help="one JSON object per image")
    parser.add_argument("--annotate", type=Path, metavar="DIR", help="write annotated images")
    parser.add_argument("--model", type=Path, help="checkpoint (default: settings or shipped)")
    parser.add_argument("--all-pages", action="store_true", help="read every PDF/TIFF page")
    parser.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="batch mode: read on N processes (default: one per core), JSON lines in input "
        "order, a progress bar on stderr; also for folders and --skip-done",
    )
    parser.add_argument(
        "--skip-done",
        type=Path,
        metavar="OUT.jsonl",
        help="batch mode: append the results to OUT.jsonl, skipping files it already holds",
    )


def _record(name: str, reading: Any) -> dict[str, Any]:
    return {
        "file": name,
        "text": reading.text,
        "digits": [
            {
                "label": d.label,
                "confidence": round(d.confidence, 4),
                "box": list(d.box),
                "line": d.line,
                "number": d.number,
            }
            for d in reading.digits
        ],
        "elapsed_ms": round(reading.elapsed_ms, 2),
    }


def run(args: argparse.Namespace, settings: Any) -> int:
    from vision.annotate import annotate, encode_jpeg
    from vision.decode import ImageError, decode_pages
    from vision.reader import DigitReader

    model = args.model or getattr(settings, "model_path", None)
    if args.jobs is not None or args.skip_done or any(p.is_dir() for p in args.images):
        from vision.batch import read_batch

        return read_batch(args, model, getattr(settings, "torch_threads", 1))
    reader = DigitReader.load(model, threads=getattr(settings, "torch_threads", 1))
    if args.annotate:
        args.annotate.mkdir(parents=True, exist_ok=True)
    status = 0
    for path in args.images:
        try:
            data = path.read_bytes()
            readings = reader.read_pages(data) if args.all_pages else [reader.read(data)]
        except (ImageError, OSError) as exc:
            sys.stderr.write(f"{path}: {exc}\n")
            status = 1
            continue
        for reading in readings:
            name = str(path) if len(readings) == 1 else f"{path}#{reading.page + 1}"
            if args.json:
                print(json.dumps(_record(name, reading), ensure_ascii=False))
            else:
                print(f"{name}\t{reading.text.replace(chr(10), ' / ')}")
            if args.annotate:
                page = decode_pages(data)[reading.page]
                suffix = "" if len(readings) == 1 else f"-p{reading.page + 1}"
                out = args.annotate / f"{path.stem}{suffix}.jpg"
                out.write_bytes(encode_jpeg(annotate(page, reading)))
    return status
