"""Pure vision: numpy arrays in, plain dataclasses out. No Telegram, SQL or environment.

`DigitClassifier` classifies MNIST-normalised 28×28 digits; `DigitReader` reads whole
photos and scans.
"""

from vision.checkpoint import CheckpointError
from vision.classifier import DigitClassifier
from vision.normalize import PREPROCESSING_VERSION, normalize_digit

__all__ = ["PREPROCESSING_VERSION", "CheckpointError", "DigitClassifier", "normalize_digit"]
