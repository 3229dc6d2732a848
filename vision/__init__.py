"""Pure vision: numpy arrays in, plain dataclasses out. No Telegram, SQL or environment.

`DigitClassifier` classifies MNIST-normalised 28×28 digits; `LineReader` reads a line of
digits whole; `DigitReader` reads whole photos and scans with both.
"""

from vision.checkpoint import CheckpointError
from vision.classifier import DigitClassifier
from vision.decode import (
    CorruptImage,
    FileTooLarge,
    ImageError,
    ImageTooLarge,
    PasswordProtected,
    TooManyPages,
    UnsupportedFormat,
    decode_image,
    decode_pages,
    iter_pages,
)
from vision.line_reader import LineRead, LineReader
from vision.normalize import PREPROCESSING_VERSION, normalize_digit
from vision.reader import DigitReader, ReadDigit, Reading
from vision.segment import SegmentationError

__all__ = [
    "PREPROCESSING_VERSION",
    "CheckpointError",
    "CorruptImage",
    "DigitClassifier",
    "DigitReader",
    "FileTooLarge",
    "ImageError",
    "ImageTooLarge",
    "LineRead",
    "LineReader",
    "PasswordProtected",
    "ReadDigit",
    "Reading",
    "SegmentationError",
    "TooManyPages",
    "UnsupportedFormat",
    "decode_image",
    "decode_pages",
    "iter_pages",
    "normalize_digit",
]
