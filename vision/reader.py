"""DigitReader: photo or scan in, `Reading` (text + per-digit details) out.

Two models, each loaded once: a fixed *segmenter* scores candidate shapes while the
segmentation decides where to split and merge (its thresholds are tuned to that model's
confidences, and it gives two touching digits little confidence as any one digit), and
the *classifier* reads the digits finally cut. Fine-tuning the classifier (on reader-cut
crops, on users' corrections) then improves the labels without shifting where digits
are cut. A page photographed askew is turned level around its writing and segmented
again, so the line model reads it as it reads a level page. `read` is stateless apart
from the models, so worker threads may share one reader. To swap the classifier,
`with_classifier` returns a new reader (or assign `reader.classifier`: each `read` picks
it up once, at its start).
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vision.classifier import DEFAULT_THREADS, SEGMENTER_MODEL_PATH, DigitClassifier
from vision.decode import MAX_BYTES, MAX_PAGES, MAX_PIXELS, decode_for_reading, iter_pages
from vision.fit_lines import fit_lines, line_bands
from vision.line_reader import LINE_MODEL_PATH, LineReader
from vision.segment import (
    MAX_SIDE,
    Candidate,
    Scorer,
    Segmentation,
    SegmentationError,
    chain_lines,
    group_numbers,
    merge,
    score_candidates,
    segment,
    split_best,
)

log = logging.getLogger(__name__)

DEFAULT_CONFIDENCE_THRESHOLD = 0.8
# A page photographed askew is turned level around its writing and this many digit
# heights beyond it (`level_region`), and segmented again.
LEVEL_MARGIN = 1.0


@dataclass
class ReadDigit:
    """One digit read: its label, how sure, where (original image pixels), and its crop."""

    label: int
    confidence: float
    runner_up: int
    runner_up_confidence: float
    box: tuple[int, int, int, int]  # x, y, w, h in the original image
    line: int
    number: int  # index of the number within its line
    crop: np.ndarray = field(repr=False)  # uint8 [28, 28], MNIST-normalised
    low_confidence: bool = False
    # The two readings `label` multiplies: the classifier's of the crop alone, and the line
    # model's of the digit in its line (None where it did not read this digit).
    classifier_label: int | None = None
    line_label: int | None = None


@dataclass
class Reading:
    """What one image (or page) says: numbers on a line joined by spaces, lines by newlines."""

    text: str
    digits: list[ReadDigit]
    width: int
    height: int
    elapsed_ms: float
    page: int = 0

    @property
    def empty(self) -> bool:
        return not self.digits

    @property
    def mean_confidence(self) -> float:
        return float(np.mean([d.confidence for d in self.digits])) if self.digits else 0.0

    @property
    def min_confidence(self) -> float:
        return float(min(d.confidence for d in self.digits)) if self.digits else 0.0

    @property
    def low_confidence(self) -> bool:
        """True when any digit is below the reader's threshold."""
        return any(d.low_confidence for d in self.digits)


def _text(lines: list[list[list[Candidate]]]) -> str:
    return "\n".join(
        " ".join("".join(str(int(np.argmax(d.probs))) for d in number) for number in line)
        for line in lines
    )


@dataclass
class DigitReader:
    """Reads handwritten numbers in photos and scans with loaded `DigitClassifier`s.

    `segmenter` scores shapes while cutting (None: the classifier does both).
    `lines` reads each line whole and decides which shapes are its digits (None: the
    shapes the segmentation keeps are the digits).
    """

    classifier: DigitClassifier
    confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD
    max_pixels: int = MAX_PIXELS
    segmenter: DigitClassifier | None = None
    max_bytes: int = MAX_BYTES
    lines: LineReader | None = None

    @classmethod
    def load(
        cls,
        model: str | Path | DigitClassifier | None = None,
        *,
        device: str | None = None,
        confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
        segmenter: str | Path | DigitClassifier | None = SEGMENTER_MODEL_PATH,
        lines: str | Path | LineReader | None = LINE_MODEL_PATH,
        max_bytes: int = MAX_BYTES,
        threads: int = DEFAULT_THREADS,
    ) -> DigitReader:
        """The shipped models by default; a checkpoint path or a loaded classifier otherwise.

        `segmenter=None` lets the classifier score the shapes while cutting as well.
        `lines`: by default the line model the classifier's checkpoint carries (one the
        learning loop fine-tuned with it), else the shipped one; None reads without one.
        `threads`: PyTorch intra-op threads per classifier call on a photo's crops (one by
        default: steady latency beside busy neighbours; 0: the caller's setting). It
        applies to the models loaded here; a loaded classifier keeps its own.
        """
        clf = (
            model
            if isinstance(model, DigitClassifier)
            else DigitClassifier.load(model, device=device, threads=threads)
        )
        if lines is LINE_MODEL_PATH and clf.lines_path is not None:
            lines = clf.lines_path
        seg = (
            segmenter
            if segmenter is None or isinstance(segmenter, DigitClassifier)
            else DigitClassifier.load(segmenter, device=device, threads=threads)
        )
        line_reader = (
            lines
            if lines is None or isinstance(lines, LineReader)
            else LineReader.load(lines, device=device, threads=threads)
        )
        return cls(
            clf,
            confidence_threshold=confidence_threshold,
            segmenter=seg,
            max_bytes=max_bytes,
            lines=line_reader,
        )

    def with_classifier(self, classifier: DigitClassifier) -> DigitReader:
        """A reader with the same settings, segmenter and another classifier (hot-swapping)."""
        return DigitReader(
            classifier,
            self.confidence_threshold,
            self.max_pixels,
            segmenter=self.segmenter,
            max_bytes=self.max_bytes,
            lines=self.lines,
        )

    # ------------------------------------------------------------------ reading

    def read(
        self,
        image: np.ndarray | bytes,
        *,
        expected_digits: int | None = None,
        scale: float = 1.0,
    ) -> Reading:
        """Read a BGR/grey uint8 array, or encoded bytes (first page of a PDF/TIFF).

        `scale` says an array is the original shrunk that many times (as
        `decode_for_reading` returns it): boxes and sizes come back in original pixels.

        With `expected_digits`, the image is re-segmented into exactly that many digits
        (splitting the widest shape, merging the closest fragments, dropping the weakest
        mark); when that is impossible a `SegmentationError` is raised, never a reading
        with another count. Bad bytes raise an `ImageError` subclass.
        """
        start = time.perf_counter()
        array, scale = self._decode(image, scale)
        return self._read_array(array, scale, self.classifier, start, expected_digits, page=0)

    def line_bands(self, image: np.ndarray | bytes) -> list[np.ndarray]:
        """The bands of `image` the line model would read, one per line, top to bottom (a
        page askew turned level first; none where no writing is found, or where the turned
        writing still leans): the learning loop pairs them with a user's corrected lines
        to fine-tune the line model."""
        array, _ = self._decode(image, 1.0)
        seg, level, _ = self._segment(array, (self.segmenter or self.classifier).classify)
        return line_bands(seg, level)

    def _segment(
        self, array: np.ndarray, scorer: Scorer
    ) -> tuple[Segmentation, np.ndarray, np.ndarray | None]:
        """The segmentation, the image it refers to, and the 2×3 affine map from that image
        back to `array` (None: `array` itself).

        A page photographed askew is turned level and segmented again, so its lines are
        chained, its digits cut and read, and the line model reads it as on a level page.
        Where the turned page still leans (or holds nothing), the first segmentation stands.
        """
        seg = segment(array, scorer)
        if not seg.lean:
            return seg, array, None
        level, back = level_region(array, seg)
        again = segment(level, scorer)
        if again.lean or not again.lines:
            return seg, array, None
        return again, level, back

    def _decode(self, image: np.ndarray | bytes, scale: float) -> tuple[np.ndarray, float]:
        """The array to read and how many times the original was shrunk to it."""
        if isinstance(image, bytes | bytearray | memoryview):
            return decode_for_reading(
                bytes(image),
                max_side=MAX_SIDE,
                max_pixels=self.max_pixels,
                max_bytes=self.max_bytes,
            )
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive number, got {scale!r}")
        return _check_array(image), scale

    def read_pages(self, data: bytes | str | Path, *, max_pages: int = MAX_PAGES) -> list[Reading]:
        """One reading per page of a PDF or multi-page TIFF (or the single page of an image)."""
        return [reading for reading, _ in self.read_document(data, max_pages=max_pages)]

    def read_document(
        self, data: bytes | str | Path, *, max_pages: int = MAX_PAGES, first_only: bool = False
    ) -> Iterator[tuple[Reading, np.ndarray]]:
        """(reading, page image) for each page, decoded and read one page at a time.

        Header, size and page-count errors are raised by this call; a page is decoded (a
        PDF page rendered, once) only when the iteration reaches it, and is free to go
        when the caller moves on, so a long document never sits in memory whole. The
        page image is what the reading's boxes refer to (e.g. for `annotate`).
        `first_only` reads page 1 alone, whatever the page count.
        """
        clf = self.classifier
        pages = iter_pages(
            data,
            max_pixels=self.max_pixels,
            max_pages=max_pages,
            max_bytes=self.max_bytes,
            first_only=first_only,
        )
        return (
            (self._read_array(page, 1.0, clf, time.perf_counter(), None, page=index), page)
            for index, page in enumerate(pages)
        )

    def _read_array(
        self,
        array: np.ndarray,
        scale: float,
        clf: DigitClassifier,
        start: float,
        expected_digits: int | None,
        page: int,
    ) -> Reading:
        scorer = (self.segmenter or clf).classify
        seg, level, back = self._segment(array, scorer)
        if expected_digits is not None:
            seg = constrain(seg, expected_digits, scorer)
        elif self.lines is not None:
            seg = fit_lines(seg, level, self.lines, scorer)
        rescore = self.segmenter is not None and self.segmenter is not clf
        own = {
            id(c): int(np.argmax(p))
            for c, p in zip(seg.digits, _label(seg.digits, clf, rescore=rescore), strict=True)
        }
        height, width = (round(s * scale) for s in array.shape[:2])
        digits = []
        for li, line in enumerate(seg.lines):
            for ni, number in enumerate(line):
                for c in number:
                    probs, crop = c.scores, c.digit_crop
                    order = np.argsort(probs)[::-1]
                    conf = float(probs[order[0]])
                    x0, y0, x1, y1 = _box_in_original(c, seg.scale, back, scale)
                    x0, y0 = max(0, min(x0, width - 1)), max(0, min(y0, height - 1))
                    x1, y1 = max(x0 + 1, min(x1, width)), max(y0 + 1, min(y1, height))
                    digits.append(
                        ReadDigit(
                            label=int(order[0]),
                            confidence=conf,
                            runner_up=int(order[1]),
                            runner_up_confidence=float(probs[order[1]]),
                            box=(x0, y0, x1 - x0, y1 - y0),
                            line=li,
                            number=ni,
                            crop=crop,
                            low_confidence=conf < self.confidence_threshold,
                            classifier_label=own[id(c)],
                            line_label=(
                                None if c.line_probs is None else int(np.argmax(c.line_probs))
                            ),
                        )
                    )
        elapsed = (time.perf_counter() - start) * 1000.0
        return Reading(_text(seg.lines), digits, width, height, elapsed, page)


def _label(digits: list[Candidate], clf: DigitClassifier, *, rescore: bool) -> list[np.ndarray]:
    """The final probabilities of the digits cut (at most one batched classifier call);
    returns the classifier's own, before the line model's are multiplied in.

    With `rescore`, every digit is classified again (the segmenter scored the cuts).
    Where the line model read the digit too, the two readings are multiplied.
    """
    if not digits:
        return []
    if rescore:
        crops = np.stack([c.digit_crop for c in digits])
        for c, probs in zip(digits, clf.classify(crops), strict=True):
            c.probs = probs
    own = [c.scores for c in digits]
    for c in digits:  # two independent readings of the same digit: multiply and renormalise
        if c.line_probs is not None:
            joint = c.scores * c.line_probs
            c.probs = joint / max(float(joint.sum()), 1e-12)
    return own


def level_region(
    image: np.ndarray, seg: Segmentation, margin: float = LEVEL_MARGIN
) -> tuple[np.ndarray, np.ndarray]:
    """The region around `seg`'s digits, turned level (by -`seg.lean` degrees), and the
    2×3 affine map from it back to `image`.

    Only the writing and `margin` digit heights around it are turned: the picture's own
    edges, turned, would be slanted strokes beside the digits.
    """
    cands = seg.digits
    corners = (
        np.array(
            [p for c in cands for p in ((c.x, c.y), (c.x2, c.y), (c.x, c.y2), (c.x2, c.y2))],
            np.float64,
        )
        * seg.scale
    )
    pad = margin * float(np.median([c.h for c in cands])) * seg.scale
    m = cv2.getRotationMatrix2D((0.0, 0.0), -seg.lean, 1.0)
    level = corners @ m[:, :2].T + m[:, 2]
    x0, y0 = level.min(axis=0) - pad
    x1, y1 = level.max(axis=0) + pad
    m[:, 2] -= (x0, y0)
    size = (max(1, math.ceil(x1 - x0)), max(1, math.ceil(y1 - y0)))
    out = cv2.warpAffine(image, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out, cv2.invertAffineTransform(m)


def _box_in_original(
    c: Candidate, seg_scale: float, back: np.ndarray | None, scale: float
) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of a candidate in the original image's pixels: its working box
    scaled up, and where the page was turned level, its corners turned back (the box
    holding them)."""
    corners = np.array([[c.x, c.y], [c.x2, c.y], [c.x, c.y2], [c.x2, c.y2]], np.float64) * seg_scale
    if back is not None:
        corners = corners @ back[:, :2].T + back[:, 2]
    corners *= scale
    (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
    return round(x0), round(y0), round(x1), round(y1)


def _check_array(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"read expects a numpy array or bytes, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"read expects a uint8 image, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ValueError(f"read expects a grey or BGR image, got shape {image.shape}")
    if min(image.shape[:2]) < 1:
        raise ValueError("read expects a non-empty image")
    return image


def constrain(seg: Segmentation, n: int, scorer) -> Segmentation:
    """Re-segment into exactly `n` digits or raise `SegmentationError`."""
    if n < 1:
        raise SegmentationError("expected_digits must be at least 1")
    cands = seg.digits
    if not cands:
        raise SegmentationError("No handwriting was found to split into digits.")
    guard = 0
    while len(cands) != n:
        guard += 1
        if guard > 4 * n + 20:
            raise SegmentationError(f"Could not segment the image into {n} digits.")
        median_h = float(np.median([c.h for c in cands]))
        if len(cands) < n:
            # Split the widest shape (relative to its height) into two.
            widest = max(cands, key=lambda c: c.w / max(1, c.h))
            pieces = split_best(widest, seg.ink, scorer, force=2)
            if len(pieces) < 2:
                raise SegmentationError(f"Could not split the writing into {n} digits.")
            cands = [c for c in cands if c is not widest] + pieces
        else:
            weakest = min(cands, key=lambda c: c.confidence * min(1.0, c.h / median_h))
            if weakest.confidence * min(1.0, weakest.h / median_h) < 0.3:
                cands = [c for c in cands if c is not weakest]
                continue
            ordered = sorted(cands, key=lambda c: c.x)
            pairs = [
                (
                    (b.x - a.x2) / median_h + abs(a.cy - b.cy) / median_h,
                    i,
                )
                for i, (a, b) in enumerate(itertools.pairwise(ordered))
            ]
            _, i = min(pairs)
            merged = merge(ordered[i], ordered[i + 1])
            cands = [*ordered[:i], merged, *ordered[i + 2 :]]
        score_candidates(cands, seg.ink, scorer)
    median_h = float(np.median([c.h for c in cands]))
    lines = chain_lines(cands, median_h)
    return Segmentation(group_numbers(lines), seg.scale, seg.ink, seg.mask, seg.lean)
