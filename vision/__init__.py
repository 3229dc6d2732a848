"""Pure vision: numpy arrays in, plain dataclasses out. No Telegram, SQL or environment.

`DigitClassifier` classifies MNIST-normalised 28×28 digits; `DigitReader` reads whole
photos and scans.
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
