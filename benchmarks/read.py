"""`digits bench read`: reader accuracy and latency on synthetic and real photos.

Latency is end to end (decode the encoded bytes, segment, classify) on one CPU thread.
The 1280×960 lines time that size apart: the synthetic photos drawn at it, and the real
photos with a 4:3 frame resized to it (Telegram sends a photo at most 1280 px long).
Accuracy: digit accuracy aligns the read digits with the expected ones by edit distance
(whitespace removed); exact-string accuracy compares the digit sequences with
whitespace removed (as the dev set's README asks), and "layout" compares the full text
including the spaces between numbers and the newlines between lines.
"""

from __future__ import annotations

import csv
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vision.annotate import annotate, encode_jpeg

CEILING = "synthetic ceiling"
FIELDS_CEILING = "fields ceiling"
CEILINGS = (CEILING, FIELDS_CEILING)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between two strings."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


@dataclass
class Score:
    """Accumulated accuracy and latency over one set."""

    name: str
    n: int = 0
    exact: int = 0
    layout: int = 0
    count_ok: int = 0
    digits_total: int = 0
    digits_ok: int = 0
    latencies: list[float] = field(default_factory=list)
    failures: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, name: str, expected: str, got: str, ms: float) -> None:
        e, g = _digits(expected), _digits(got)
        self.n += 1
        self.exact += e == g
        self.layout += expected.strip() == got.strip()
        self.count_ok += len(e) == len(g)
        self.digits_total += len(e)
        self.digits_ok += max(0, len(e) - edit_distance(e, g))
        self.latencies.append(ms)
        if e != g:
            self.failures.append((name, expected, got))

    def summary(self) -> dict[str, Any]:
        lat = np.array(self.latencies) if self.latencies else np.zeros(1)
        return {
            "set": self.name,
            "images": self.n,
            "digit_accuracy": self.digits_ok / max(1, self.digits_total),
            "exact": self.exact / max(1, self.n),
            "exact_layout": self.layout / max(1, self.n),
            "digit_count_accuracy": self.count_ok / max(1, self.n),
            "p50_ms": float(np.percentile(lat, 50)),
            "p95_ms": float(np.percentile(lat, 95)),
        }


def _time_read(reader: Any, data: bytes) -> tuple[str, float]:
    reading, ms = _timed_reading(reader, data)
    return reading.text, ms


def _timed_reading(reader: Any, data: bytes) -> tuple[Any, float]:
    start = time.perf_counter()
    reading = reader.read(data)
    return reading, (time.perf_counter() - start) * 1000.0


def tilted(img: np.ndarray, degrees: float) -> bytes:
    """`img` turned `degrees` counter-clockwise, as a JPEG: a page photographed askew.

    The canvas holds the whole picture; the corners it adds continue the picture's edge
    (the desk around a page, or the page filling the frame), which a camera would see.
    """
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    new_w, new_h = round(w * cos + h * sin), round(w * sin + h * cos)
    m[0, 2] += (new_w - w) / 2
    m[1, 2] += (new_h - h) / 2
    out = cv2.warpAffine(
        img, m, (new_w, new_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return encode_jpeg(out, 92)


def bench_synthetic(
    reader: Any, mnist_test: Any, n: int, seed: int, tilt: float = 0.0
) -> list[Score]:
    """Scores on (all synthetic photos, the 1280×960 ones, the classifier's ceiling), and
    with `tilt`, on the photos turned by ±`tilt` degrees (alternately).

    The ceiling classifies the pristine MNIST digits each photo was drawn from: what a
    perfect segmentation of undamaged digits would score with this model.
    """
    from training.data.synth import digit_pool, generate_photo

    pool = digit_pool(mnist_test)
    rng = np.random.default_rng(seed)
    score, big = Score("synthetic"), Score("synthetic 1280x960")
    ceiling = Score(CEILING)
    askew = Score(f"synthetic ±{tilt:g}°")
    for i in range(n):
        sources: list[int] = []
        img, expected = generate_photo(rng, pool, sources)
        text, ms = _time_read(reader, encode_jpeg(img, 92))
        score.add(f"synthetic#{i}", expected, text, ms)
        if img.shape[:2] == (960, 1280):
            big.add(f"synthetic#{i}", expected, text, ms)
        labels = iter(reader.classifier.classify(pool[0][sources]).argmax(axis=1))
        pristine = "".join(str(next(labels)) if ch.isdigit() else ch for ch in expected)
        ceiling.add(f"synthetic#{i}", expected, pristine, 0.0)
        if tilt:
            text, ms = _time_read(reader, tilted(img, tilt if i % 2 == 0 else -tilt))
            askew.add(f"synthetic#{i}", expected, text, ms)
    return [score, big, ceiling, *([askew] if tilt else [])]


def bench_fields(reader: Any, mnist_test: Any, n: int, seed: int) -> list[Score]:
    """Numbers cut from forms (`training.data.fields`, MNIST *test* digits): scores over
    all of them, the classifier's ceiling on their pristine digits, and per background."""
    from training.data.fields import draw_field

    pool = (mnist_test.images, mnist_test.labels)
    score, ceiling = Score("fields"), Score(FIELDS_CEILING)
    by_background: dict[str, Score] = {}
    for i in range(n):
        f = draw_field(np.random.default_rng([seed, i]), pool)
        text, ms = _time_read(reader, f.image)
        score.add(f"fields#{i}", f.text, text, ms)
        part = by_background.setdefault(f.background, Score(f"fields: {f.background}"))
        part.add(f"fields#{i}", f.text, text, ms)
        read = reader.classifier.classify(pool[0][f.sources]).argmax(axis=1)
        ceiling.add(f"fields#{i}", f.text, "".join(str(int(d)) for d in read), 0.0)
    return [score, ceiling, *(by_background[k] for k in sorted(by_background))]


@dataclass(frozen=True)
class Photo:
    """One labelled dev photo: where it is, what it reads, where it came from."""

    path: Path
    text: str
    source: str
    kind: str


def load_photos(devsets_dir: Path) -> list[Photo]:
    """The real-photo dev set's rows; a clear error if it is missing."""
    root = Path(devsets_dir) / "photos"
    labels = root / "labels.csv"
    if not labels.exists():
        raise FileNotFoundError(
            f"real-photo dev set not found: {labels} is missing. Set DIGITS_DEVSETS_DIR to "
            "the folder holding photos/ (CI uses ../shared/devsets)."
        )
    with open(labels, newline="") as fh:
        return [
            Photo(
                root / "images" / row["file"],
                row["text"],
                row.get("source_repo") or "unknown",
                row.get("kind") or "unknown",
            )
            for row in csv.DictReader(fh)
        ]


def load_photo_labels(devsets_dir: Path) -> list[tuple[Path, str]]:
    """(image path, expected text) for the real-photo dev set."""
    return [(photo.path, photo.text) for photo in load_photos(devsets_dir)]


# Numbers cut out of a form are cut along its lines, not photographed askew: turned, their
# corners continue the cut table lines as streaks no camera sees.
NOT_TILTED = "digit-string-crop"


def is_4_3(img: np.ndarray) -> bool:
    """A phone camera's 4:3 frame (either way up), not a cut-out cell."""
    h, w = img.shape[:2]
    return abs(max(h, w) / min(h, w) - 4 / 3) <= 0.03


def to_1280x960(img: np.ndarray) -> bytes:
    """`img` resized to 1280×960 (960×1280 upright) as a JPEG: a phone photo at the size
    Telegram delivers it."""
    h, w = img.shape[:2]
    size = (1280, 960) if w >= h else (960, 1280)
    interp = cv2.INTER_AREA if max(h, w) > 1280 else cv2.INTER_CUBIC
    return encode_jpeg(cv2.resize(img, size, interpolation=interp), 92)


def as_1280x960(data: bytes) -> bytes | None:
    """A 4:3 photo at Telegram's size; None for another frame (a cut-out cell)."""
    from vision.decode import decode_image

    img = decode_image(data)
    return to_1280x960(img) if is_4_3(img) else None


@dataclass
class PhotoScores:
    """The real photos scored whole, at Telegram's size, askew, and per source and kind."""

    whole: Score
    big: Score
    askew: Score | None
    by_source: dict[str, Score]
    by_kind: dict[str, Score]
    # Which reading is right (`attribute`), over the photos read with the right count.
    attribution: Counter[tuple[bool, bool | None, bool]] = field(default_factory=Counter)
    # The photos not read exactly, by file name, as read (`failure_sheet` draws them).
    misread: dict[str, Any] = field(default_factory=dict)

    def main_scores(self) -> list[Score]:
        return [self.whole, self.big, *([self.askew] if self.askew else [])]

    def source_mean(self, key: str) -> float:
        """`key` of the summary averaged over sources: a source with 40 photos weighs as
        much as one with 1, so one prolific writer does not dominate."""
        values = [s.summary()[key] for s in self.by_source.values()]
        return float(np.mean(values)) if values else 0.0


def bench_photos(reader: Any, devsets_dir: Path, tilt: float = 0.0) -> PhotoScores:
    """The real photos as they are, the 4:3 ones resized to 1280×960, and with `tilt`,
    turned by ±`tilt` degrees (alternately; not the cut-out numbers)."""
    from vision.decode import decode_image

    scores = PhotoScores(
        Score("real photos"),
        Score("real 1280x960"),
        Score(f"real ±{tilt:g}°, no crops") if tilt else None,
        {},
        {},
    )
    for i, photo in enumerate(load_photos(devsets_dir)):
        name, expected = photo.path.name, photo.text
        data = photo.path.read_bytes()
        reading, ms = _timed_reading(reader, data)
        text = reading.text
        scores.attribution.update(attribute(expected, reading))
        if _digits(text) != _digits(expected):
            scores.misread[name] = reading
        scores.whole.add(name, expected, text, ms)
        scores.by_source.setdefault(photo.source, Score(photo.source)).add(name, expected, text, ms)
        scores.by_kind.setdefault(photo.kind, Score(photo.kind)).add(name, expected, text, ms)
        resized = as_1280x960(data)
        if resized is not None:
            text, ms = _time_read(reader, resized)
            scores.big.add(name, expected, text, ms)
        if scores.askew is not None and photo.kind != NOT_TILTED:
            turned = tilted(decode_image(data), tilt if i % 2 == 0 else -tilt)
            text, ms = _time_read(reader, turned)
            scores.askew.add(name, expected, text, ms)
    return scores


# The failure sheet (`failure_sheet`): one tile per misread photo, this many pixels wide,
# with room below for its caption.
TILE = 360
CAPTION = 44
SHEET_COLUMNS = 4
WRONG_COLOUR = (0, 0, 230)


def failure_sheet(photos: list[Photo], readings: dict[str, Any], path: Path) -> int:
    """Write a picture of the photos `readings` names (as `bench_photos` read them), boxed as
    the bot boxes them; where each line holds as many digits as it should, the wrong ones are
    boxed in red too. Each tile is captioned with the file, what it says and what was read:
    one look shows which misses are cuts and which are readings. Returns the tiles drawn."""
    from vision.decode import decode_image

    tiles = []
    for photo in photos:
        reading = readings.get(photo.path.name)
        if reading is None:
            continue
        image = decode_image(photo.path.read_bytes())
        canvas = annotate(image, reading, max_side=TILE)
        sx, sy = canvas.shape[1] / reading.width, canvas.shape[0] / reading.height
        for d in _wrong_digits(photo.text, reading):
            x, y, bw, bh = d.box
            p0 = (round(x * sx) - 3, round(y * sy) - 3)
            p1 = (round((x + bw) * sx) + 3, round((y + bh) * sy) + 3)
            cv2.rectangle(canvas, p0, p1, WRONG_COLOUR, 2)
        tiles.append(_tile(canvas, photo.path.name, photo.text, reading.text))
    drawn = len(tiles)
    if tiles:
        while len(tiles) % SHEET_COLUMNS:
            tiles.append(np.full_like(tiles[0], 255))
        rows = [
            np.hstack(tiles[i : i + SHEET_COLUMNS]) for i in range(0, len(tiles), SHEET_COLUMNS)
        ]
        if not cv2.imwrite(str(path), np.vstack(rows)):
            raise OSError(f"could not write the failure sheet to {path}")
    return drawn


def _paired_digits(expected: str, reading: Any) -> list[tuple[int, Any]]:
    """(expected digit, digit read) in reading order, where every line holds as many
    digits as it should (else which digit stands for which is a guess: none)."""
    want = [d for d in (_digits(line) for line in expected.split("\n")) if d]
    lines: dict[int, list[Any]] = {}
    for d in reading.digits:
        lines.setdefault(d.line, []).append(d)
    got = [lines[k] for k in sorted(lines)]
    if [len(w) for w in want] != [len(g) for g in got]:
        return []
    return [(int(c), d) for w, g in zip(want, got, strict=True) for c, d in zip(w, g, strict=True)]


def _wrong_digits(expected: str, reading: Any) -> list[Any]:
    """The digits read wrong, where every line holds as many digits as it should."""
    return [d for want, d in _paired_digits(expected, reading) if d.label != want]


def attribute(expected: str, reading: Any) -> Counter[tuple[bool, bool | None, bool]]:
    """For each digit of a reading with the right count on every line: is the classifier's
    own reading right, the line model's (None: it read none there), and their product?"""
    return Counter(
        (
            d.classifier_label == want,
            None if d.line_label is None else d.line_label == want,
            d.label == want,
        )
        for want, d in _paired_digits(expected, reading)
    )


def _tile(canvas: np.ndarray, name: str, expected: str, got: str) -> np.ndarray:
    """`canvas` (at most TILE on a side, as `annotate` drew it) on a tile, captioned below."""
    tile = np.full((TILE + CAPTION, TILE, 3), 255, np.uint8)
    tile[: canvas.shape[0], : canvas.shape[1]] = canvas
    lines = (f"{name}: {expected}", f"read: {got}")
    for i, text in enumerate(t.replace("\n", " / ") for t in lines):
        y = TILE + 18 + 20 * i
        cv2.putText(tile, text[:48], (4, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    cv2.rectangle(tile, (0, 0), (TILE - 1, TILE + CAPTION - 1), (180, 180, 180), 1)
    return tile


@dataclass
class LeaveOneSourceOut:
    """A choice among settings made on the photos, scored on sources it was not made on.

    For each source, the setting with the most exact readings on all *other* sources is
    picked (the first listed on a tie) and that setting's readings of the held-out source
    are what count. `exact` is over images, `source_mean` the mean over sources; `chosen`
    says which setting each held-out source got; `all_sources` is each setting's exact
    over all photos, the figure a choice made on every source would report.
    """

    exact: float
    source_mean: float
    chosen: dict[str, str]
    all_sources: dict[str, float]


def leave_one_source_out(settings: dict[str, dict[str, Score]]) -> LeaveOneSourceOut:
    """Leave-one-source-out over `settings[name][source]`, each setting's per-source scores
    of the same photos (e.g. `PhotoScores.by_source` of one reader per setting)."""
    if not settings:
        raise ValueError("leave_one_source_out needs at least one setting")
    names = list(settings)
    sources = sorted(set().union(*(s.keys() for s in settings.values())))
    for name in names:
        if set(settings[name]) != set(sources):
            raise ValueError(f"setting {name!r} was not scored on the same sources")
    total = {n: sum(settings[n][s].exact for s in sources) for n in names}
    chosen: dict[str, str] = {}
    hits = images = 0
    per_source: list[float] = []
    for source in sources:
        pick = max(names, key=lambda n: (total[n] - settings[n][source].exact, -names.index(n)))
        chosen[source] = pick
        held = settings[pick][source]
        hits, images = hits + held.exact, images + held.n
        per_source.append(held.exact / max(1, held.n))
    n_all = sum(settings[names[0]][s].n for s in sources)
    return LeaveOneSourceOut(
        exact=hits / max(1, images),
        source_mean=float(np.mean(per_source)),
        chosen=chosen,
        all_sources={n: total[n] / max(1, n_all) for n in names},
    )
