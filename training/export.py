"""The collected handwriting as a dataset, in the formats people already load.

- ``idx``: MNIST IDX, gzipped, same file names and layout as MNIST
- ``npz``: ``digits.npz`` with x_train, y_train, x_test, y_test (+ writer ids)
- ``png``: ``png/{train,test}/<label>/<n>.png`` (torchvision ImageFolder layout)
- ``csv``: ``csv/{train,test}.csv`` with label, pixel0 … pixel783
- ``parquet``: ``parquet/{train,test}.parquet`` in the Hugging Face layout: ``image``
  (struct of PNG ``bytes`` and ``path``), ``label`` (+ ``writer``); needs pyarrow

Writers appear only as salted-hash pseudonyms, and the train/test split is by writer (the
database's per-user split: holdout users are the test set), so no one is in both. The
export is written to a temporary folder and renamed into place when complete.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import hmac
import json
import logging
import os
import secrets
import shutil
import struct
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
from sqlalchemy.orm import Session
from tqdm import tqdm

import db
from db import LabelSource, Split

log = logging.getLogger(__name__)

FORMATS = ("idx", "npz", "png", "csv", "parquet")
SPLITS = ("train", "test")
IDX_NAMES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
DEFAULT_LICENCE = (
    "CC BY 4.0. The digits were written by users of the bot who allowed their handwriting "
    "to be used for training; the operator publishing this export must make sure the bot's "
    "terms of use cover publication under this licence."
)


HF_FEATURES = json.dumps(
    {
        "info": {
            "features": {
                "image": {"_type": "Image"},
                "label": {"names": [str(i) for i in range(10)], "_type": "ClassLabel"},
                "writer": {"dtype": "string", "_type": "Value"},
            }
        }
    }
)


class ExportError(ValueError):
    """The export cannot be made as asked (bad filter, missing dependency, target exists)."""


@dataclass
class SplitArrays:
    images: np.ndarray  # uint8 [N, 28, 28]
    labels: np.ndarray  # uint8 [N]
    writers: list[str]  # pseudonyms, one per digit


@dataclass
class Dataset:
    train: SplitArrays
    test: SplitArrays
    sources: Counter[str] = field(default_factory=Counter)
    first: datetime | None = None
    last: datetime | None = None
    dropped_classes: dict[int, int] = field(default_factory=dict)  # label -> count left out
    filters: dict[str, str] = field(default_factory=dict)

    def split(self, name: str) -> SplitArrays:
        return self.train if name == "train" else self.test

    def __len__(self) -> int:
        return len(self.train.labels) + len(self.test.labels)


def pseudonym(user_id: int, salt: str) -> str:
    """A writer id that cannot be traced back without the salt (HMAC-SHA256, 16 hex)."""
    return hmac.new(salt.encode(), str(int(user_id)).encode(), hashlib.sha256).hexdigest()[:16]


def collect(
    session: Session,
    *,
    salt: str,
    since: datetime | None = None,
    only_corrections: bool = False,
    only_confirmed: bool = False,
    min_per_class: int = 0,
    holdout_fraction: float,
) -> Dataset:
    """The labelled digits of users who allow training (and are not blocked), filtered."""
    if only_corrections and only_confirmed:
        raise ExportError("choose at most one of only-corrections and only-confirmed")
    if min_per_class < 0:
        raise ExportError(f"minimum count per class must be >= 0, got {min_per_class}")
    if not salt:
        raise ExportError("a salt is needed to pseudonymise writers")
    sources = None
    if only_corrections:
        sources = [LabelSource.CORRECTED, LabelSource.ALIGNED]
    elif only_confirmed:
        sources = [LabelSource.CONFIRMED]
    digits = db.labelled_digits(
        session, since=since, sources=sources, holdout_fraction=holdout_fraction
    )
    counts = Counter(d.label for d in digits)
    dropped = {label: n for label, n in counts.items() if n < min_per_class}
    kept = [d for d in digits if d.label not in dropped]
    if dropped:
        log.warning(
            "left out classes with fewer than %d digits: %s",
            min_per_class,
            ", ".join(f"{k} ({v})" for k, v in sorted(dropped.items())),
        )

    def arrays(rows: list[db.LabelledDigit]) -> SplitArrays:
        if not rows:
            return SplitArrays(np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8), [])
        images = np.frombuffer(b"".join(d.crop for d in rows), np.uint8).reshape(-1, 28, 28)
        return SplitArrays(
            images.copy(),
            np.array([d.label for d in rows], np.uint8),
            [pseudonym(d.user_id, salt) for d in rows],
        )

    filters = {
        "since": since.isoformat() if since else "",
        "sources": ", ".join(s.value for s in sources) if sources else "all",
        "min_per_class": str(min_per_class),
    }
    return Dataset(
        train=arrays([d for d in kept if d.split == Split.TRAIN]),
        test=arrays([d for d in kept if d.split == Split.HOLDOUT]),
        sources=Counter(str(d.source) for d in kept),
        first=min((d.created for d in kept), default=None),
        last=max((d.created for d in kept), default=None),
        dropped_classes=dropped,
        filters=filters,
    )


# --- writers ------------------------------------------------------------------------------


def write_idx(path: Path, array: np.ndarray) -> None:
    """One MNIST IDX file (uint8), gzipped without a timestamp (reproducible bytes)."""
    array = np.ascontiguousarray(array, np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        out.write(header + array.tobytes())


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    zero, kind, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or kind != 0x08:
        raise ExportError(f"{path}: not a uint8 IDX file")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    return np.frombuffer(data[4 + 4 * ndim :], np.uint8).reshape(shape).copy()


def _png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    if not ok:  # pragma: no cover - OpenCV always encodes a uint8 28×28 array
        raise ExportError("PNG encoding failed")
    return buf.tobytes()


def _write_idx(ds: Dataset, out: Path) -> None:
    for name in SPLITS:
        images_name, labels_name = IDX_NAMES[name]
        write_idx(out / "idx" / images_name, ds.split(name).images)
        write_idx(out / "idx" / labels_name, ds.split(name).labels)


def _write_npz(ds: Dataset, out: Path) -> None:
    np.savez_compressed(
        out / "digits.npz",
        x_train=ds.train.images,
        y_train=ds.train.labels,
        x_test=ds.test.images,
        y_test=ds.test.labels,
        writer_train=np.array(ds.train.writers, dtype="U16"),
        writer_test=np.array(ds.test.writers, dtype="U16"),
    )


def _write_png(ds: Dataset, out: Path, progress: bool) -> None:
    for name in SPLITS:
        part = ds.split(name)
        for label in range(10):
            (out / "png" / name / str(label)).mkdir(parents=True, exist_ok=True)
        width = max(6, len(str(len(part.labels))))
        for i in tqdm(range(len(part.labels)), desc=f"png {name}", disable=not progress):
            target = out / "png" / name / str(int(part.labels[i])) / f"{i:0{width}d}.png"
            target.write_bytes(_png(part.images[i]))


def _write_csv(ds: Dataset, out: Path) -> None:
    header = ["label", *(f"pixel{i}" for i in range(784))]
    for name in SPLITS:
        part = ds.split(name)
        with open(out / "csv" / f"{name}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            flat = part.images.reshape(len(part.labels), 784)
            for label, row in zip(part.labels, flat, strict=True):
                writer.writerow([int(label), *row.tolist()])


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ExportError(
            "the Parquet format needs pyarrow: pip install 'digits[parquet]' "
            "(or leave parquet out of --formats)"
        ) from None
    return pyarrow


def _write_parquet(ds: Dataset, out: Path) -> None:
    pa = _pyarrow()
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    for name in SPLITS:
        part = ds.split(name)
        table = pa.table(
            {
                "image": pa.array(
                    [{"bytes": _png(img), "path": None} for img in part.images], image_type
                ),
                "label": pa.array(part.labels.astype(np.int64), pa.int64()),
                "writer": pa.array(part.writers, pa.string()),
            }
        )
        # The schema metadata `datasets` writes itself: `image` loads as an Image feature
        # and `label` as a ClassLabel named "0"…"9".
        table = table.replace_schema_metadata({"huggingface": HF_FEATURES})
        pa.parquet.write_table(table, out / "parquet" / f"{name}.parquet")


def datasheet(ds: Dataset, formats: list[str], licence: str, stable_salt: bool) -> str:
    """The README.md that travels with the export."""
    lines = [
        "# Handwritten digits collected by the digits bot",
        "",
        "28×28 greyscale digits (white ink on black, normalised like MNIST) cut from photos "
        "users sent, labelled by the users themselves: a reading they confirmed, a correction "
        "they typed, or a correction aligned to a re-segmentation (`aligned`).",
        "",
        f"- digits: {len(ds)} (train {len(ds.train.labels)}, test {len(ds.test.labels)})",
        f"- writers: {len(set(ds.train.writers))} in train, {len(set(ds.test.writers))} in test "
        "(split by writer: nobody is in both)",
        f"- written between {ds.first:%Y-%m-%d} and {ds.last:%Y-%m-%d}"
        if ds.first and ds.last
        else "- no digits matched the filters",
        "- filters: " + ", ".join(f"{k}={v or '-'}" for k, v in ds.filters.items()),
        f"- formats: {', '.join(formats)}",
        "",
        "## Digits per class",
        "",
        "| label | train | test |",
        "|---|---:|---:|",
    ]
    train_counts = Counter(int(v) for v in ds.train.labels)
    test_counts = Counter(int(v) for v in ds.test.labels)
    for label in range(10):
        lines.append(f"| {label} | {train_counts[label]} | {test_counts[label]} |")
    if ds.dropped_classes:
        dropped = ", ".join(f"{k} ({v} digits)" for k, v in sorted(ds.dropped_classes.items()))
        lines += ["", f"Classes below the minimum count, left out: {dropped}."]
    lines += ["", "## Digits per label source", "", "| source | digits |", "|---|---:|"]
    for source, count in sorted(ds.sources.items()):
        lines.append(f"| {source} | {count} |")
    lines += [
        "",
        "## Privacy",
        "",
        "Writers are identified only by a salted HMAC-SHA256 pseudonym of an internal id "
        "(never the Telegram id). "
        + (
            "The salt is the operator's DIGITS_EXPORT_SALT: pseudonyms are stable across "
            "exports made with it."
            if stable_salt
            else "The salt was random and not kept: pseudonyms differ between exports."
        ),
        "Only users who allowed training and are not blocked are included.",
        "",
        "## Licence",
        "",
        licence,
        "",
    ]
    return "\n".join(lines)


def export(
    ds: Dataset,
    out_dir: Path,
    formats: list[str],
    *,
    licence: str = DEFAULT_LICENCE,
    stable_salt: bool = True,
    progress: bool = False,
) -> Path:
    """Write every format into `out_dir`, which must not exist yet (nothing is overwritten)."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ExportError(f"unknown format(s) {unknown}; choose from {', '.join(FORMATS)}")
    if "parquet" in formats:
        _pyarrow()  # fail before writing anything
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise ExportError(f"{out_dir} already exists: choose a new folder (nothing overwritten)")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for sub in ("idx", "png", "csv", "parquet"):
            if sub in formats:
                (tmp / sub).mkdir()
        writers = {
            "idx": lambda: _write_idx(ds, tmp),
            "npz": lambda: _write_npz(ds, tmp),
            "png": lambda: _write_png(ds, tmp, progress),
            "csv": lambda: _write_csv(ds, tmp),
            "parquet": lambda: _write_parquet(ds, tmp),
        }
        for name in formats:
            log.info("writing %s", name)
            writers[name]()
        (tmp / "README.md").write_text(datasheet(ds, formats, licence, stable_salt))
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


# --- readers (for the round-trip test and for users of the export) -----------------------


def load(out_dir: Path, fmt: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read one format of an export back: {"train": (images, labels), "test": ...}."""
    out_dir = Path(out_dir)
    result: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in SPLITS:
        if fmt == "idx":
            images_name, labels_name = IDX_NAMES[name]
            result[name] = (
                read_idx(out_dir / "idx" / images_name),
                read_idx(out_dir / "idx" / labels_name),
            )
        elif fmt == "npz":
            with np.load(out_dir / "digits.npz") as data:
                result[name] = (data[f"x_{name}"], data[f"y_{name}"])
        elif fmt == "png":
            found: list[tuple[int, int, np.ndarray]] = []
            for label_dir in sorted((out_dir / "png" / name).iterdir()):
                for file in label_dir.glob("*.png"):
                    image = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE)
                    found.append((int(file.stem), int(label_dir.name), image))
            found.sort(key=lambda t: t[0])
            result[name] = _stack([f[2] for f in found], [f[1] for f in found])
        elif fmt == "csv":
            with open(out_dir / "csv" / f"{name}.csv", newline="") as handle:
                rows = list(csv.reader(handle))[1:]
            values = np.array(rows, np.int64).reshape(-1, 785)
            result[name] = (
                values[:, 1:].astype(np.uint8).reshape(-1, 28, 28),
                values[:, 0].astype(np.uint8),
            )
        elif fmt == "parquet":
            pa = _pyarrow()
            table = pa.parquet.read_table(out_dir / "parquet" / f"{name}.parquet")
            images = [
                cv2.imdecode(np.frombuffer(cell["bytes"], np.uint8), cv2.IMREAD_GRAYSCALE)
                for cell in table.column("image").to_pylist()
            ]
            result[name] = _stack(images, table.column("label").to_pylist())
        else:
            raise ExportError(f"unknown format {fmt!r}")
    return result


def _stack(images: list[np.ndarray], labels: list[int]) -> tuple[np.ndarray, np.ndarray]:
    if not images:
        return np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8)
    return np.stack(images).astype(np.uint8), np.array(labels, np.uint8)


def new_salt() -> str:
    return secrets.token_hex(16)


__all__ = ["FORMATS", "Dataset", "ExportError", "collect", "export", "load", "pseudonym"]
