"""The schema as typed ORM classes.

Alembic migrations (``alembic/versions``) are the only thing that creates tables; these
classes describe what the migrations build, and ``alembic check`` keeps the two in step.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

#: Every constraint and index gets a predictable name, so later migrations can drop or
#: alter them by name on both SQLite (batch mode) and PostgreSQL.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

CROP_SIDE = 28
CROP_BYTES = CROP_SIDE * CROP_SIDE


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the only kind of datetime stored)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always returned timezone-aware.

    SQLite has no timezone type and would hand back naive values; PostgreSQL keeps
    ``timestamptz``. Naive input is refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware (UTC) datetime")
        value = value.astimezone(UTC)
        # SQLite stores the wall-clock text; make it UTC so string comparison orders it.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class ReadingStatus(enum.StrEnum):
    """Where a reading stands with its sender."""

    PENDING = "pending"  # read, the user has said nothing yet
    CONFIRMED = "confirmed"  # the user said the text read is right
    CORRECTED = "corrected"  # the user typed the right text; digits labelled one by one
    REVIEW = "review"  # corrected, but the digit count differs: digits not labelled


class LabelSource(enum.StrEnum):
    """Where a digit's true label came from."""

    CONFIRMED = "confirmed"
    CORRECTED = "corrected"
    ALIGNED = "aligned"  # recovered by the learning loop from a "review" correction


class UserSource(enum.StrEnum):
    """Where a user came from. A web browser is a user whose ``telegram_id`` is negative
    (Telegram's user ids are positive), so every storage function serves both."""

    BOT = "bot"
    WEB = "web"


class ModelStatus(enum.StrEnum):
    CANDIDATE = "candidate"
    ACTIVE = "active"
    REJECTED = "rejected"
    RETIRED = "retired"


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


class Split(enum.StrEnum):
    """Which side of the train/holdout split all of one user's digits sit on."""

    TRAIN = "train"
    HOLDOUT = "holdout"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # VARCHAR + CHECK rather than a native PostgreSQL ENUM: adding a value later is a
    # plain constraint change that migrates the same way on SQLite and PostgreSQL.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


# 64-bit ids on PostgreSQL; SQLite only autoincrements a column declared INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy's declarative hook
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class User(Base):
    """A Telegram user (by Telegram id) or a web browser (a negative id, source web).

    The internal id is what exports use.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    training_allowed: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    blocked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    split: Mapped[Split | None] = mapped_column(_enum(Split, "split"))
    source: Mapped[UserSource] = mapped_column(
        _enum(UserSource, "source"), default=UserSource.BOT, server_default=UserSource.BOT.value
    )

    readings: Mapped[list[Reading]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"User(id={self.id}, telegram_id={self.telegram_id})"


class Reading(Base):
    """One image read for one user: what was read, how sure, and what the user said."""

    __tablename__ = "readings"
    __table_args__ = (
        Index(None, "user_id", "created_at"),
        Index(None, "status", "id"),
        CheckConstraint("width > 0 AND height > 0", name="size"),
        CheckConstraint(
            "mean_confidence IS NULL OR (mean_confidence >= 0 AND mean_confidence <= 1)",
            name="mean_confidence",
        ),
        CheckConstraint(
            "min_confidence IS NULL OR (min_confidence >= 0 AND min_confidence <= 1)",
            name="min_confidence",
        ),
        CheckConstraint("elapsed_ms IS NULL OR elapsed_ms >= 0", name="elapsed_ms"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime]
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    file_unique_id: Mapped[str | None] = mapped_column(String(128))
    image_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    image_path: Mapped[str | None] = mapped_column(String(1024))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    # A label, not a foreign key: the shipped baseline model reads before any version
    # is registered, and a reading must never be refused for that.
    model_version: Mapped[str | None] = mapped_column(String(64), index=True)
    text: Mapped[str] = mapped_column(Text)
    mean_confidence: Mapped[float | None] = mapped_column(Float)
    min_confidence: Mapped[float | None] = mapped_column(Float)
    status: Mapped[ReadingStatus] = mapped_column(
        _enum(ReadingStatus, "status"),
        default=ReadingStatus.PENDING,
        server_default=ReadingStatus.PENDING.value,
    )
    corrected_text: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None]
    elapsed_ms: Mapped[float | None] = mapped_column(Float)

    user: Mapped[User] = relationship(back_populates="readings")
    digits: Mapped[list[Digit]] = relationship(
        back_populates="reading",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Digit.position",
    )

    def __repr__(self) -> str:
        return f"Reading(id={self.id}, status={self.status}, text={self.text!r})"


class Digit(Base):
    """One segmented digit: its box, its 28×28 crop and, once known, its true label."""

    __tablename__ = "digits"
    __table_args__ = (
        UniqueConstraint("reading_id", "position"),
        CheckConstraint("position >= 0", name="position"),
        CheckConstraint("box_x >= 0 AND box_y >= 0 AND box_w > 0 AND box_h > 0", name="box"),
        CheckConstraint(f"length(crop) = {CROP_BYTES}", name="crop_size"),
        CheckConstraint("predicted BETWEEN 0 AND 9", name="predicted"),
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence"),
        CheckConstraint("label IS NULL OR label BETWEEN 0 AND 9", name="label"),
        CheckConstraint(
            "(label IS NULL AND label_source IS NULL AND labelled_at IS NULL)"
            " OR (label IS NOT NULL AND label_source IS NOT NULL AND labelled_at IS NOT NULL)",
            name="label_complete",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    reading_id: Mapped[int] = mapped_column(ForeignKey("readings.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    line: Mapped[int] = mapped_column(Integer)
    number: Mapped[int] = mapped_column(Integer)
    box_x: Mapped[int] = mapped_column(Integer)
    box_y: Mapped[int] = mapped_column(Integer)
    box_w: Mapped[int] = mapped_column(Integer)
    box_h: Mapped[int] = mapped_column(Integer)
    crop: Mapped[bytes] = mapped_column(LargeBinary)
    predicted: Mapped[int] = mapped_column(SmallInteger)
    confidence: Mapped[float] = mapped_column(Float)
    label: Mapped[int | None] = mapped_column(SmallInteger)
    label_source: Mapped[LabelSource | None] = mapped_column(_enum(LabelSource, "label_source"))
    labelled_at: Mapped[datetime | None] = mapped_column(index=True)

    reading: Mapped[Reading] = relationship(back_populates="digits")

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (self.box_x, self.box_y, self.box_w, self.box_h)

    def __repr__(self) -> str:
        return f"Digit(id={self.id}, position={self.position}, predicted={self.predicted})"


class ModelVersion(Base):
    """A trained model file and how it came to be; at most one is active at a time."""

    __tablename__ = "model_versions"
    __table_args__ = (
        # The database itself refuses a second active model (partial unique index,
        # understood by both SQLite and PostgreSQL).
        Index(
            "uq_model_versions_one_active",
            "status",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        CheckConstraint("length(sha256) = 64", name="sha256"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    path: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    parent_version: Mapped[str | None] = mapped_column(
        ForeignKey("model_versions.version", ondelete="SET NULL"), index=True
    )
    data_summary: Mapped[dict[str, Any]]
    metrics: Mapped[dict[str, Any]]
    status: Mapped[ModelStatus] = mapped_column(_enum(ModelStatus, "status"))
    activated_at: Mapped[datetime | None]
    notes: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"ModelVersion(version={self.version!r}, status={self.status})"


class TrainingRun(Base):
    """One attempt of the learning loop, successful or not."""

    __tablename__ = "training_runs"
    __table_args__ = (
        CheckConstraint(
            "(mnist_samples IS NULL OR mnist_samples >= 0)"
            " AND (user_samples IS NULL OR user_samples >= 0)",
            name="samples",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]
    status: Mapped[RunStatus] = mapped_column(_enum(RunStatus, "status"))
    params: Mapped[dict[str, Any]]
    mnist_samples: Mapped[int | None] = mapped_column(Integer)
    user_samples: Mapped[int | None] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[str | None] = mapped_column(
        ForeignKey("model_versions.version", ondelete="SET NULL"), index=True
    )

    def __repr__(self) -> str:
        return f"TrainingRun(id={self.id}, status={self.status})"
