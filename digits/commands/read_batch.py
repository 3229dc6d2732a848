"""Batch reading: many files (a folder of scans, a long PDF) on several processes.

Each page is one task, so one long PDF spreads over every process too. Results come
back as they finish and are written as JSON lines in the order of the input, each as
soon as everything before it is written; a file that cannot be read becomes a line with
an `error` (and one line on stderr) and the batch goes on. With a `done` set (names
already written by an earlier, interrupted run) those pages are not read again.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from vision.decode import MAX_BYTES

log = logging.getLogger(__name__)

# What a folder is searched for (recursively); files named explicitly are always tried.
EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".pdf"}
# Tasks queued per process: enough to keep each busy, few enough to start output early.
QUEUED_PER_JOB = 4


@dataclass(frozen=True)
class Task:
    """One unit of work: a file, or one page of a PDF (`page` counts from 0)."""

    path: str
    name: str  # the output's "file": the path, or "path#N" for page N of several
    page: int | None = None  # a page of a PDF of several; None: the file (all_pages: all)
    stem: str = ""  # the annotated picture's name: the file's stem, made unique in the batch


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files as given; folders replaced by the images and PDFs in them, sorted."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = (p for p in path.rglob("*") if p.is_file())
            out.extend(sorted(p for p in found if p.suffix.lower() in EXTENSIONS))
        else:
            out.append(path)
    return out


def pdf_pages(path: Path) -> int | None:
    """The page count of a PDF file, None for any other file; OSError/ValueError if bad."""
    with open(path, "rb") as fh:
        if fh.read(5) != b"%PDF-":
            return None
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(path))
    except Exception as exc:  # pdfium raises its own PdfiumError for damage
        raise ValueError("The PDF file is damaged or incomplete.") from exc
    try:
        return len(pdf)
    finally:
        pdf.close()


def plan(
    paths: Iterable[Path],
    *,
    all_pages: bool,
    done: Collection[str] = frozenset(),
) -> Iterator[Task | dict[str, Any]]:
    """The tasks in output order; a record with an `error` where a PDF cannot be opened.

    With `all_pages` a PDF gives one task per page; names in `done` are left out.
    """
    taken: set[str] = set()
    for path in expand(paths):
        # Named over every input, done or not, so that a resumed batch names alike.
        stem = _unique_stem(path.stem, taken)
        pages: int | None = None
        if all_pages:
            try:
                pages = pdf_pages(path)
            except (OSError, ValueError) as exc:
                if str(path) not in done:
                    yield {"file": str(path), "error": _message(exc)}
                continue
        if pages is None or pages == 1:
            if str(path) not in done and f"{path}#1" not in done:
                yield Task(str(path), str(path), stem=stem)
            continue
        for page in range(pages):
            name = f"{path}#{page + 1}"
            if name not in done:
                yield Task(str(path), name, page, stem)


def _unique_stem(stem: str, taken: set[str]) -> str:
    """`stem`, or `stem-2`, `stem-3`... for a later input of the same name, as `digits
    read --annotate` names them."""
    name, n = stem, 1
    while name in taken:
        n += 1
        name = f"{stem}-{n}"
    taken.add(name)
    return name


def _message(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def load_done(path: Path) -> set[str]:
    """The names an earlier run wrote without an error (a torn last line is ignored)."""
    done: set[str] = set()
    if not path.exists():
        return done
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and "error" not in record and "file" in record:
                done.add(str(record["file"]))
    return done


# --- the worker side ----------------------------------------------------------------------

_reader: Any = None
_options: dict[str, Any] = {}


def init_worker(
    model: str | None, threads: int, all_pages: bool, annotate: str | None, max_bytes: int
) -> None:
    """Load the reader once per process; OpenCV on one thread (the processes share cores)."""
    global _reader
    import cv2

    from vision.reader import DigitReader

    cv2.setNumThreads(1)
    _reader = DigitReader.load(model, threads=threads, max_bytes=max_bytes)
    _options.update(all_pages=all_pages, annotate=annotate, max_bytes=max_bytes)


def read_task(task: Task) -> list[dict[str, Any]]:
    """The JSON records of one task: a reading per page, or one record with an error."""
    from digits.commands.read import record

    try:
        records = [record(name, reading) for name, reading in _read_and_annotate(task)]
    except Exception as exc:  # a bad file never stops the batch
        log.debug("%s failed", task.name, exc_info=True)
        return [{"file": task.name, "error": _message(exc)}]
    return records


def _read_and_annotate(task: Task) -> Iterator[tuple[str, Any]]:
    """(output name, reading) per page; each page decoded once, drawn on if asked, let go.

    Read as `digits read` reads it: the whole document with `all_pages`, else the file;
    to be drawn on, the file is decoded once (a large JPEG at reduced size) and read
    from that same array.
    """
    from digits.commands.read import lookahead
    from vision.decode import decode_for_reading, read_file
    from vision.segment import MAX_SIDE

    data = read_file(task.path, _options["max_bytes"])
    if task.page is not None:
        data = _single_page_pdf(data, task.page)
    folder = _options["annotate"]
    if task.page is None and _options["all_pages"]:
        pages: Iterable[tuple[str, Any, Any, int | None]] = (
            (f"{task.name}#{r.page + 1}" if many else task.name, r, image, r.page if many else None)
            for r, image, many in lookahead(_reader.read_document(data))
        )
    elif folder:
        array, scale = decode_for_reading(data, max_side=MAX_SIDE, max_bytes=_options["max_bytes"])
        pages = [(task.name, _reader.read(array, scale=scale), array, task.page)]
    else:
        pages = [(task.name, _reader.read(data), None, task.page)]
    for name, reading, image, page in pages:
        if folder and image is not None:
            suffix = "" if page is None else f"-p{page + 1}"
            _write_new(Path(folder) / f"{task.stem}{suffix}.jpg", image, reading)
        yield name, reading


def _write_new(path: Path, image: Any, reading: Any) -> None:
    """The annotated picture, never over a file that is there already."""
    from vision.annotate import annotate, encode_jpeg

    try:
        with open(path, "xb") as handle:
            handle.write(encode_jpeg(annotate(image, reading)))
    except FileExistsError:
        raise FileExistsError(0, "already exists; not overwritten", str(path)) from None


def _single_page_pdf(data: bytes, page: int) -> bytes:
    """Page `page` of a PDF as a PDF of its own (read by the usual decoder's rules)."""
    import io

    import pypdfium2 as pdfium

    src = pdfium.PdfDocument(data)
    out = pdfium.PdfDocument.new()
    try:
        out.import_pages(src, [page])
        buf = io.BytesIO()
        out.save(buf)
        return buf.getvalue()
    finally:
        out.close()
        src.close()


# --- the parent side ----------------------------------------------------------------------


@dataclass
class Summary:
    """What a batch did: records written, how many were errors, and how long reading took."""

    written: int = 0
    errors: int = 0
    pages: int = 0
    seconds: float = 0.0


def run_batch(
    tasks: Iterable[Task | dict[str, Any]],
    out: TextIO,
    *,
    jobs: int,
    model: str | None,
    threads: int,
    all_pages: bool = False,
    annotate: str | None = None,
    max_bytes: int = MAX_BYTES,
    progress: bool = True,
    err: TextIO | None = None,
) -> Summary:
    """Read every task on `jobs` processes (1: in this process), writing records in order."""
    from tqdm import tqdm

    err = err or sys.stderr
    items = list(tasks)
    summary = Summary()
    bar = tqdm(total=len(items), unit="file", file=err, disable=not progress, dynamic_ncols=True)

    def write(records: list[dict[str, Any]]) -> None:
        for record in records:
            if "error" in record:
                summary.errors += 1
                bar.write(f"{record['file']}: {record['error']}", file=err)
            else:
                summary.pages += 1
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            summary.written += 1
        out.flush()

    args = (model, threads, all_pages, annotate, max_bytes)
    try:
        if jobs <= 1:
            init_worker(*args)
            start = time.perf_counter()
            for item in items:
                write([item] if isinstance(item, dict) else read_task(item))
                bar.update()
        else:
            start = _in_processes(items, jobs, args, write, bar.update)
    finally:
        bar.close()
    summary.seconds = time.perf_counter() - start
    return summary


def _in_processes(
    items: list[Task | dict[str, Any]],
    jobs: int,
    args: tuple[Any, ...],
    write: Callable[[list[dict[str, Any]]], None],
    tick: Callable[[], Any],
) -> float:
    """Run the tasks on a pool, writing each result once all before it are written;
    returns when the pool was ready (its processes started and their models loaded)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # torch and OpenCV threads do not fork
    pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=init_worker, initargs=args)
    with pool:
        for ready in [pool.submit(_ready) for _ in range(jobs)]:
            ready.result()
        start = time.perf_counter()
        results: dict[int, list[dict[str, Any]]] = {}
        running: dict[Future[list[dict[str, Any]]], int] = {}
        upcoming = iter(enumerate(items))
        next_out = 0
        exhausted = False
        while True:
            while not exhausted and len(running) < jobs * QUEUED_PER_JOB:
                index, item = next(upcoming, (-1, None))
                if item is None:
                    exhausted = True
                elif isinstance(item, dict):
                    results[index] = [item]
                    tick()
                else:
                    running[pool.submit(read_task, item)] = index
            while next_out in results:
                write(results.pop(next_out))
                next_out += 1
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                index = running.pop(future)
                item = items[index]  # a Task: records (dicts) are never submitted
                name = item.name if isinstance(item, Task) else str(item.get("file"))
                try:
                    results[index] = future.result()
                except Exception as exc:  # the worker died (killed, out of memory)
                    results[index] = [{"file": name, "error": _message(exc)}]
                tick()
    return start


def _ready() -> int:
    """A first task per process: returns once the process has loaded its reader."""
    time.sleep(0.2)  # long enough that each process takes one
    return os.getpid()


def _ends_torn(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() == 0:
            return False
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) != b"\n"


def read_batch(args: Any, model: Any, threads: int, max_bytes: int) -> int:
    """`digits read` in batch mode: 0 when every file was read, else 1."""
    if args.jobs is not None and args.jobs < 1:
        sys.stderr.write(f"digits read: --jobs must be at least 1, got {args.jobs}\n")
        return 2
    jobs = args.jobs or os.cpu_count() or 1
    done = load_done(args.skip_done) if args.skip_done else set()
    tasks = list(plan(args.images, all_pages=args.all_pages, done=done))
    if done:
        sys.stderr.write(f"{len(done)} already read in {args.skip_done}, {len(tasks)} to go\n")
    if args.annotate:
        from digits.commands.read import prepare_folder

        prepare_folder(args.annotate)
    out = open(args.skip_done, "a", encoding="utf-8") if args.skip_done else sys.stdout  # noqa: SIM115
    if args.skip_done and _ends_torn(args.skip_done):
        out.write("\n")  # an interrupted run's last line stays apart from the next
    try:
        summary = run_batch(
            tasks,
            out,
            jobs=min(jobs, max(1, len(tasks))),
            model=str(model) if model else None,
            threads=threads,
            all_pages=args.all_pages,
            annotate=str(args.annotate) if args.annotate else None,
            max_bytes=max_bytes,
        )
    finally:
        if out is not sys.stdout:
            out.close()
    rate = summary.pages / summary.seconds if summary.seconds > 0 else 0.0
    sys.stderr.write(
        f"{summary.pages} read, {summary.errors} failed in {summary.seconds:.1f} s "
        f"({rate:.1f}/s on {jobs} process{'es' if jobs > 1 else ''})\n"
    )
    return 1 if summary.errors else 0
