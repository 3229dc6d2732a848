"""Storage: every reading, digit crop, correction, model version and training run.

The schema comes only from the Alembic migrations in ``alembic/``; the app never calls
``create_all``. Storage functions take a ``Session`` and never commit: the caller owns the
transaction (``session_scope(factory)`` is the usual way). Nothing here reads the
environment or imports the rest of the project.

Typical use (the bot)::

    engine = make_engine(settings.db_url)          # once per process, after upgrade()
    factory = make_session_factory(engine)
    store = ImageStore(settings.images_dir if settings.store_images else None)
    stored = store.put(photo_bytes)                # 1. file first (atomic, idempotent)
    with session_scope(factory) as session:        # 2. then the rows, one transaction
        reading = record_reading(session, ..., image_sha256=stored.sha256,
                                 image_path=str(stored.path) if stored.path else None, ...)
    # a crash between 1 and 2 leaves a complete, unreferenced file and no row

    with session_scope(factory) as session:        # forgetting a user
        result = forget_user(session, telegram_id)
    with factory() as session:                     # files only after the commit
        delete_unreferenced_images(session, store, result.unreferenced_images)

Setup
    make_engine(url, *, sqlite_busy_timeout_s=60, sqlite_synchronous="FULL",
                sqlite_begin="IMMEDIATE", **engine_kwargs) -> Engine
    make_session_factory(engine) -> sessionmaker[Session]
    session_scope(factory) -> context manager yielding a Session in one transaction
    upgrade(url, revision="head") -> str | None      (safe at every start)
    downgrade(url, revision) / current_revision(url) / head_revision()
    is_current(url) -> bool / check_current(url) (raises MigrationError)
    check_models(url)                                ("alembic check")

Users
    get_or_create_user(session, telegram_id, *, now=None) -> User   (updates last_seen)
    get_user(session, telegram_id) -> User | None
    set_training_consent(session, telegram_id, allowed) -> User
    set_blocked(session, telegram_id, blocked) -> User

Readings and labels
    record_reading(session, *, telegram_id, chat_id, message_id, file_unique_id,
                   image_sha256, image_path, width, height, model_version, text,
                   digits: Sequence[DigitRecord], elapsed_ms, now=None) -> Reading
    get_reading(session, reading_id) -> Reading | None
    recent_readings(session, telegram_id, *, limit=10) -> list[Reading]
    confirm_reading(session, reading_id, telegram_id) -> Reading
    correct_reading(session, reading_id, telegram_id, text) -> CorrectionResult
    normalize_correction(text) -> str
    label_digits(session, reading_id, labels, source) -> Reading
    replace_digits(session, reading_id, digits, *, labels=None, source="aligned") -> Reading
    readings_for_review(session, *, limit=100, after_id=None, unlabelled_only=True,
                        training_allowed_only=True) -> list[Reading]

Training data
    labelled_digits(session, *, since=None, split=None, holdout_fraction=0.2,
                    sources=None, limit=None) -> list[LabelledDigit]
    assign_splits(session, holdout_fraction=0.2) -> int

Model versions and training runs
    register_model_version(session, *, version, path, sha256, parent_version,
                           data_summary, metrics, status="candidate", notes=None)
    activate_model_version / reject_model_version / retire_model_version(session, version)
    get_model_version(session, version) / active_model_version(session) -> ModelVersion | None
    list_model_versions(session)
    start_training_run(session, params) -> TrainingRun
    finish_training_run(session, run_id, *, status, mnist_samples, user_samples, metrics,
                        error=None, model_version=None) -> TrainingRun
    list_training_runs(session, *, limit=50)

Statistics and deletion
    user_stats(session, telegram_id) -> UserStats
    forget_user(session, telegram_id) -> ForgetResult   (then commit, then:)
    delete_unreferenced_images(session, store, shas) -> list[str]

Images
    ImageStore(root | None): put(data, *, ext=None) -> StoredImage(sha256, path),
    read(sha256), open(sha256) -> Path, path(sha256), exists, delete(sha256),
    iter_sha256(), sweep_temp_files(older_than_s=3600)

Leftovers of killed processes
    collect_garbage(factory, *, images=None, models_dir=None, min_age_s=3600) -> GcReport
"""

from db.engine import make_engine, make_session_factory, normalize_url, session_scope
from db.errors import (
    InvalidCorrection,
    InvalidInput,
    InvalidTransition,
    ModelVersionExists,
    ModelVersionNotFound,
    NotYourReading,
    ReadingNotFound,
    StorageError,
    TrainingRunNotFound,
    UserNotFound,
)
from db.gc import GcReport, collect_garbage
from db.images import ImageCorrupt, ImageNotFound, ImageStore, StoredImage, sha256_hex
from db.migrations import (
    MigrationError,
    check_current,
    check_models,
    current_revision,
    downgrade,
    head_revision,
    is_current,
    upgrade,
)
from db.models import (
    Base,
    Digit,
    LabelSource,
    ModelStatus,
    ModelVersion,
    Reading,
    ReadingStatus,
    RunStatus,
    Split,
    TrainingRun,
    User,
)
from db.readings import (
    assign_splits,
    confirm_reading,
    correct_reading,
    delete_unreferenced_images,
    forget_user,
    get_or_create_user,
    get_reading,
    get_user,
    label_digits,
    labelled_digits,
    normalize_correction,
    readings_for_review,
    recent_readings,
    record_reading,
    replace_digits,
    set_blocked,
    set_training_consent,
    user_stats,
)
from db.records import CorrectionResult, DigitRecord, ForgetResult, LabelledDigit, UserStats
from db.registry import (
    activate_model_version,
    active_model_version,
    finish_training_run,
    get_model_version,
    list_model_versions,
    list_training_runs,
    register_model_version,
    reject_model_version,
    retire_model_version,
    start_training_run,
)

__all__ = [
    "Base",
    "CorrectionResult",
    "Digit",
    "DigitRecord",
    "ForgetResult",
    "GcReport",
    "ImageCorrupt",
    "ImageNotFound",
    "ImageStore",
    "InvalidCorrection",
    "InvalidInput",
    "InvalidTransition",
    "LabelSource",
    "LabelledDigit",
    "MigrationError",
    "ModelStatus",
    "ModelVersion",
    "ModelVersionExists",
    "ModelVersionNotFound",
    "NotYourReading",
    "Reading",
    "ReadingNotFound",
    "ReadingStatus",
    "RunStatus",
    "Split",
    "StorageError",
    "StoredImage",
    "TrainingRun",
    "TrainingRunNotFound",
    "User",
    "UserNotFound",
    "UserStats",
    "activate_model_version",
    "active_model_version",
    "assign_splits",
    "check_current",
    "check_models",
    "collect_garbage",
    "confirm_reading",
    "correct_reading",
    "current_revision",
    "delete_unreferenced_images",
    "downgrade",
    "finish_training_run",
    "forget_user",
    "get_model_version",
    "get_or_create_user",
    "get_reading",
    "get_user",
    "head_revision",
    "is_current",
    "label_digits",
    "labelled_digits",
    "list_model_versions",
    "list_training_runs",
    "make_engine",
    "make_session_factory",
    "normalize_correction",
    "normalize_url",
    "readings_for_review",
    "recent_readings",
    "record_reading",
    "register_model_version",
    "reject_model_version",
    "replace_digits",
    "retire_model_version",
    "session_scope",
    "set_blocked",
    "set_training_consent",
    "sha256_hex",
    "start_training_run",
    "upgrade",
    "user_stats",
]
