"""Plain dataclasses passed into and out of the storage functions (no ORM state)."""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from db.errors import InvalidInput
from db.models import CROP_BYTES, LabelSource, Reading, Split

# What the columns hold: BigInteger (ids, Telegram ids) and Integer (sizes, positions).
INT64 = (-(2**63), 2**63 - 1)
INT32 = (-(2**31), 2**31 - 1)


def as_int(value: Any, what: str, bounds: tuple[int, int] = INT64) -> int:
    """An int from ints and numpy integers, within the column's range (64-bit by default);
    bools and floats are refused. Out of range is InvalidInput, not the driver's
    OverflowError or DataError halfway through a transaction."""
    if isinstance(value, bool):
        raise InvalidInput(f"{what} must be an integer, got a bool")
    try:
        number = operator.index(value)
    except TypeError:
        raise InvalidInput(f"{what} must be an integer, got {value!r}") from None
    lo, hi = bounds
    if not lo <= number <= hi:
        bits = 64 if bounds == INT64 else 32 if bounds == INT32 else None
        kind = f"a {bits}-bit integer" if bits else f"between {lo} and {hi}"
        raise InvalidInput(f"{what} must be {kind}, got {_short(number)}")
    return number


def as_int32(value: Any, what: str) -> int:
    """`as_int` for an Integer column (32-bit in PostgreSQL)."""
    return as_int(value, what, INT32)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_text(value: str, what: str) -> str:
    """Text every backend stores as given: UTF-8 encodable (no lone surrogates, which
    arrive from undecodable file names and broken clients) and no NUL character, which
    PostgreSQL refuses."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start]
        raise InvalidInput(
            f"{what} contains a character that is not valid Unicode text "
            f"(U+{ord(bad):04X}, a lone surrogate, at position {exc.start})"
        ) from None
    if "\x00" in value:
        raise InvalidInput(f"{what} contains a NUL character (U+0000)")
    return value


def as_unit_float(value: Any, what: str) -> float:
    """A finite float in [0, 1] (a confidence)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise InvalidInput(f"{what} must be between 0 and 1, got {value!r}")
    return number


@dataclass(frozen=True)
class DigitRecord:
    """One segmented digit as vision hands it over, for ``record_reading``.

    ``crop`` is the 28×28 uint8 image (white digit on black), 784 bytes row-major; a
    numpy uint8 array is accepted too. ``box`` is (x, y, w, h) in original-image pixels.
    """

    position: int
    line: int
    number: int
    box: tuple[int, int, int, int]
    crop: bytes
    predicted: int
    confidence: float

    @classmethod
    def from_digits(cls, digits: Any) -> list[DigitRecord]:
        """Records for a reader's digits, in reading order.

        Duck-typed (label, confidence, box, crop, line, number) so that `db` need not
        import `vision`; confidence is clamped to [0, 1] against float rounding.
        """
        return [
            cls(
                position=i,
                line=int(d.line),
                number=int(d.number),
                box=tuple(int(v) for v in d.box),  # type: ignore[arg-type]
                crop=d.crop.astype("uint8").tobytes(),  # C order, any memory layout
                predicted=int(d.label),
                confidence=min(1.0, max(0.0, float(d.confidence))),
            )
            for i, d in enumerate(digits)
        ]

    def validated(self) -> dict[str, Any]:
        """Column values for a ``Digit`` row; raises InvalidInput on anything off."""
        where = f"digit at position {self.position!r}"
        try:
            crop = memoryview(self.crop).tobytes()  # type: ignore[arg-type]
        except TypeError:
            raise InvalidInput(
                f"{where}: crop must be bytes, got {type(self.crop).__name__}"
            ) from None
        if len(crop) != CROP_BYTES:
            raise InvalidInput(
                f"{where}: crop must be {CROP_BYTES} bytes (28×28 uint8), got {len(crop)}"
            )
        try:
            box = tuple(self.box)
        except TypeError:
            box = ()
        if len(box) != 4:
            raise InvalidInput(f"{where}: box must be (x, y, w, h), got {self.box!r}")
        x, y, w, h = (as_int32(v, f"{where}: box") for v in box)
        if x < 0 or y < 0 or w <= 0 or h <= 0:
            raise InvalidInput(f"{where}: box must have x, y >= 0 and w, h > 0, got {self.box!r}")
        position = as_int32(self.position, "position")
        line = as_int32(self.line, f"{where}: line")
        number = as_int32(self.number, f"{where}: number")
        if position < 0 or line < 0 or number < 0:
            raise InvalidInput(f"{where}: position, line and number must be >= 0")
        predicted = as_int(self.predicted, f"{where}: predicted")
        if not 0 <= predicted <= 9:
            raise InvalidInput(f"{where}: predicted must be 0-9, got {predicted}")
        return {
            "position": position,
            "line": line,
            "number": number,
            "box_x": x,
            "box_y": y,
            "box_w": w,
            "box_h": h,
            "crop": crop,
            "predicted": predicted,
            "confidence": as_unit_float(self.confidence, f"{where}: confidence"),
        }


@dataclass(frozen=True)
class LabelledDigit:
    """A digit with a known true label, as the training loop consumes it."""

    digit_id: int
    reading_id: int
    user_id: int  # internal id, never the Telegram id
    label: int
    predicted: int
    source: LabelSource
    split: Split
    crop: bytes
    created: datetime  # when the reading was made
    labelled_at: datetime


@dataclass(frozen=True)
class LabelledPicture:
    """A stored picture whose right text its sender gave (confirmed or typed): the
    learning loop's label for the whole picture, segmentation included."""

    reading_id: int
    user_id: int  # internal id, never the Telegram id
    split: Split
    image_sha256: str
    text: str  # normalised: digit groups split by one space, lines by a new line
    answered_at: datetime


@dataclass(frozen=True)
class CorrectionResult:
    reading: Reading
    text: str  # the correction as stored (normalised)
    labelled: bool  # True: each digit got its label; False: digit count differs -> review
    expected_digits: int  # digits in the corrected text
    found_digits: int  # digits segmented in the image


@dataclass(frozen=True)
class UserStats:
    known: bool
    readings: int = 0
    pending: int = 0
    confirmed: int = 0
    corrected: int = 0
    review: int = 0
    digits: int = 0
    digits_labelled: int = 0
    digits_correct: int = 0
    training_allowed: bool = True
    first_seen: datetime | None = None

    @property
    def accuracy(self) -> float | None:
        """Fraction of the user's labelled digits the model read right (None: no labels)."""
        return self.digits_correct / self.digits_labelled if self.digits_labelled else None


@dataclass(frozen=True)
class ForgetResult:
    found: bool
    readings_deleted: int = 0
    digits_deleted: int = 0
    # Images no remaining reading refers to: delete them with ImageStore.delete AFTER commit.
    unreferenced_images: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CorrectionCounts:
    """Corrected readings of users who allow training: labelled directly (same digit
    count), waiting for review (another count), and of those, labelled by recovery."""

    corrected: int
    review: int
    review_labelled: int
