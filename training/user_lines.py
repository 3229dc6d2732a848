"""Users' answered pictures as line-model training data: the segmentation learns too.

A confirmed or corrected picture is labelled as a whole: its text. The reader cuts the
picture into the bands its line model reads (`DigitReader.line_bands`), and the text's
lines are paired with them. CTC needs no per-digit positions, so a band and its string
are a training sample as they stand, whatever the segmentation got wrong:

* as many text lines as bands: in order, top to bottom;
* one text line, several bands (texture or a rule chained into lines of their own): the
  band whose reading is nearest the text holds it, every other band holds nothing, which
  teaches the line model to leave that texture out. Only where that reading is already
  near the text (`NEAR_TEXT`): otherwise the number itself may be spread over several
  bands, and "nothing" would teach the model to drop digits;
* one text line and no band at all (nothing found): the picture itself is the band, as
  the user cut it;
* anything else (lines that cannot be matched) is not used.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import cv2
import numpy as np
from tqdm import tqdm

import db
from training.data.lines import LineSet, ctc_band
from vision.decode import ImageError
from vision.reader import DigitReader

log = logging.getLogger(__name__)

# A band holds a one-line text beside other bands only if its reading is at most this
# share of the text's digits away from it (edit distance).
NEAR_TEXT = 1 / 3


@dataclass
class PictureBands:
    """What cutting the answered pictures gave."""

    pictures: int = 0
    used: int = 0  # pictures that gave training bands
    bands: int = 0
    empty_bands: int = 0  # bands labelled as holding no digit (texture, rules)
    whole_pictures: int = 0  # nothing found: the picture itself was the band
    unmatched: int = 0  # text lines and bands could not be paired
    no_image: int = 0  # not stored, or gone

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def text_lines(text: str) -> list[str]:
    """The digits of each line of a picture's text (spaces between numbers dropped)."""
    return [d for d in ("".join(c for c in line if c.isdigit()) for line in text.split("\n")) if d]


def edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def pair_lines(
    bands: list[np.ndarray], reads: list[str], truth: list[str], picture: np.ndarray | None
) -> list[tuple[np.ndarray, str]] | None:
    """(band, text) training pairs for one picture (see the module's rules), or None.

    `reads`: the line model's reading of each band; `picture`: the whole picture, the
    band when none was found."""
    if not truth:
        return None
    if len(bands) == len(truth):
        return list(zip(bands, truth, strict=True))
    if len(truth) != 1:
        return None
    if not bands:
        return None if picture is None else [(picture, truth[0])]
    distance = [edit_distance(read, truth[0]) for read in reads]
    best = min(range(len(bands)), key=lambda i: (distance[i], i))
    if distance[best] > NEAR_TEXT * len(truth[0]):
        return None
    return [(band, truth[0] if i == best else "") for i, band in enumerate(bands)]


def picture_bands(
    pictures: Iterable[db.LabelledPicture],
    reader: DigitReader,
    images: db.ImageStore,
    *,
    progress: bool = False,
) -> tuple[LineSet, PictureBands]:
    """Training bands (resized for the line model) from answered pictures."""
    if reader.lines is None:
        raise ValueError("cutting pictures into bands needs a reader with a line model")
    pictures = list(pictures)
    stats = PictureBands(pictures=len(pictures))
    out = LineSet([], [])
    for picture in tqdm(pictures, desc="users' pictures", unit="picture", disable=not progress):
        try:
            data = images.read(picture.image_sha256)
            bands = reader.line_bands(data)  # decoded and shrunk as `read` does
        except (db.ImageNotFound, db.ImageCorrupt, ImageError) as exc:
            log.debug("picture of reading %d not used: %s", picture.reading_id, exc)
            stats.no_image += 1
            continue
        reads = [r.text for r in reader.lines.read(bands)] if len(bands) > 1 else [""] * len(bands)
        whole = None
        if not bands:
            whole = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
        pairs = pair_lines(bands, reads, text_lines(picture.text), whole)
        if pairs is None:
            stats.unmatched += 1
            continue
        stats.used += 1
        stats.whole_pictures += not bands
        for band, text in pairs:
            out.bands.append(ctc_band(band, text))
            out.texts.append(text)
            stats.bands += 1
            stats.empty_bands += not text
    return out, stats
