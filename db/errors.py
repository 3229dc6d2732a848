"""Exceptions the storage functions raise; each says what was wrong and never loses data."""

from __future__ import annotations


class StorageError(Exception):
    """Base class for every error raised on purpose by ``db``."""


class InvalidInput(StorageError, ValueError):
    """An argument cannot be stored as given (nothing was written)."""


class InvalidDatabaseUrl(StorageError, ValueError):
    """DATABASE_URL is empty or names a database this project does not support."""


class InvalidCorrection(InvalidInput):
    """A correction text is not digits, spaces and newlines."""


class ReadingNotFound(StorageError, LookupError):
    """No reading has that id (or it was deleted with its user)."""


class NotYourReading(StorageError, PermissionError):
    """A reading may only be confirmed or corrected by the user who sent the image."""


class UserNotFound(StorageError, LookupError):
    """No user has that Telegram id."""


class ModelVersionNotFound(StorageError, LookupError):
    """No model version has that name."""


class ModelVersionExists(StorageError):
    """A model version with that name is already registered."""


class InvalidTransition(StorageError):
    """The requested status change is not allowed (e.g. activating a rejected model)."""


class TrainingRunNotFound(StorageError, LookupError):
    """No training run has that id."""
