"""`digits read IMAGE... [--json] [--annotate DIR]`: read handwritten numbers from files."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from digits.settings import Settings


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


def record(name: str, reading: Any) -> dict[str, Any]:
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


def run(args: argparse.Namespace, settings: Settings) -> int:
    from vision.annotate import annotate, encode_jpeg
    from vision.decode import ImageError, decode_for_reading, read_file
    from vision.reader import DigitReader
    from vision.segment import MAX_SIDE

    model = args.model or settings.model_path
    max_bytes = settings.max_upload_bytes
    if args.jobs is not None or args.skip_done or any(p.is_dir() for p in args.images):
        from digits.commands.read_batch import read_batch

        return read_batch(args, model, settings.torch_threads, max_bytes)
    reader = DigitReader.load(model, max_bytes=max_bytes, threads=settings.torch_threads)
    if args.annotate:
        prepare_folder(args.annotate)
    status = 0
    taken: set[str] = set()  # annotation names given out in this run
    for path in args.images:
        try:
            data = read_file(path, max_bytes)
            if args.all_pages:
                # Each page decoded (a PDF page rendered) once, read, drawn, then let go.
                pages = lookahead(reader.read_document(data))
            elif args.annotate:
                # Decoded once, as `read` would (a large JPEG at reduced size), and drawn on.
                array, scale = decode_for_reading(data, max_side=MAX_SIDE, max_bytes=max_bytes)
                pages = iter([(reader.read(array, scale=scale), array, False)])
            else:
                pages = iter([(reader.read(data), None, False)])
            for reading, page, multi in pages:
                name = str(path) if not multi else f"{path}#{reading.page + 1}"
                if args.json:
                    print(json.dumps(record(name, reading), ensure_ascii=False))
                else:
                    print(f"{name}\t{reading.text.replace(chr(10), ' / ')}")
                if args.annotate and page is not None:
                    suffix = "" if not multi else f"-p{reading.page + 1}"
                    out = _unique(args.annotate, f"{path.stem}{suffix}", taken)
                    try:
                        with open(out, "xb") as handle:  # never over an existing file
                            handle.write(encode_jpeg(annotate(page, reading)))
                    except FileExistsError:
                        sys.stderr.write(f"{path}: {out} already exists; not overwritten\n")
                        status = 1
        except ImageError as exc:
            sys.stderr.write(f"{path}: {exc}\n")
            status = 1
    return status


def _unique(folder: Path, stem: str, taken: set[str]) -> Path:
    """`stem.jpg`, or `stem-2.jpg`, `stem-3.jpg`... when this run already wrote that name
    (`a/x.jpg b/x.png`: two inputs, two pictures)."""
    name, n = f"{stem}.jpg", 1
    while name in taken:
        n += 1
        name = f"{stem}-{n}.jpg"
    taken.add(name)
    return folder / name


def prepare_folder(folder: Path) -> None:
    """Create the --annotate folder, or say in one line why it cannot be used."""
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(0, "--annotate needs a folder, and this is a file", str(folder))
    folder.mkdir(parents=True, exist_ok=True)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(0, "--annotate folder is not writable", str(folder))


def lookahead(pages: Any) -> Any:
    """(reading, page, more than one page?) for each page, one page ahead at most."""
    first = next(pages, None)
    if first is None:
        return
    second = next(pages, None)
    multi = second is not None
    yield (*first, multi)
    if second is not None:
        yield (*second, multi)
        for item in pages:
            yield (*item, multi)
