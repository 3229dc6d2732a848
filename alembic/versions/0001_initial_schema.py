"""Initial schema: users, readings, digits, model versions, training runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-21 16:40:10.569629+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("parent_version", sa.String(length=64), nullable=True),
        sa.Column("data_summary", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "candidate",
                "active",
                "rejected",
                "retired",
                name="status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.CheckConstraint("length(sha256) = 64", name=op.f("ck_model_versions_sha256")),
        sa.ForeignKeyConstraint(
            ["parent_version"],
            ["model_versions.version"],
            name=op.f("fk_model_versions_parent_version_model_versions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sa.UniqueConstraint("version", name=op.f("uq_model_versions_version")),
    )
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_model_versions_parent_version"), ["parent_version"], unique=False
        )
        batch_op.create_index(
            "uq_model_versions_one_active",
            ["status"],
            unique=True,
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )

    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("telegram_id", sa.BigInteger(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("training_allowed", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("blocked", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column(
            "split",
            sa.Enum(
                "train",
                "holdout",
                name="split",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("telegram_id", name=op.f("uq_users_telegram_id")),
    )
    op.create_table(
        "readings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("file_unique_id", sa.String(length=128), nullable=True),
        sa.Column("image_sha256", sa.String(length=64), nullable=True),
        sa.Column("image_path", sa.String(length=1024), nullable=True),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("mean_confidence", sa.Float(), nullable=True),
        sa.Column("min_confidence", sa.Float(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "confirmed",
                "corrected",
                "review",
                name="status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            server_default="pending",
            nullable=False,
        ),
        sa.Column("corrected_text", sa.Text(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("elapsed_ms", sa.Float(), nullable=True),
        sa.CheckConstraint(
            "elapsed_ms IS NULL OR elapsed_ms >= 0", name=op.f("ck_readings_elapsed_ms")
        ),
        sa.CheckConstraint(
            "mean_confidence IS NULL OR (mean_confidence >= 0 AND mean_confidence <= 1)",
            name=op.f("ck_readings_mean_confidence"),
        ),
        sa.CheckConstraint(
            "min_confidence IS NULL OR (min_confidence >= 0 AND min_confidence <= 1)",
            name=op.f("ck_readings_min_confidence"),
        ),
        sa.CheckConstraint("width > 0 AND height > 0", name=op.f("ck_readings_size")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_readings_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_readings")),
    )
    with op.batch_alter_table("readings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_readings_image_sha256"), ["image_sha256"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_readings_model_version"), ["model_version"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_readings_status_id"), ["status", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_readings_user_id_created_at"), ["user_id", "created_at"], unique=False
        )

    op.create_table(
        "training_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "running",
                "succeeded",
                "failed",
                "skipped",
                name="status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("mnist_samples", sa.Integer(), nullable=True),
        sa.Column("user_samples", sa.Integer(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "(mnist_samples IS NULL OR mnist_samples >= 0)"
            " AND (user_samples IS NULL OR user_samples >= 0)",
            name=op.f("ck_training_runs_samples"),
        ),
        sa.ForeignKeyConstraint(
            ["model_version"],
            ["model_versions.version"],
            name=op.f("fk_training_runs_model_version_model_versions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_runs")),
    )
    with op.batch_alter_table("training_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_training_runs_model_version"), ["model_version"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_training_runs_started_at"), ["started_at"], unique=False
        )

    op.create_table(
        "digits",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "reading_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("box_x", sa.Integer(), nullable=False),
        sa.Column("box_y", sa.Integer(), nullable=False),
        sa.Column("box_w", sa.Integer(), nullable=False),
        sa.Column("box_h", sa.Integer(), nullable=False),
        sa.Column("crop", sa.LargeBinary(), nullable=False),
        sa.Column("predicted", sa.SmallInteger(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("label", sa.SmallInteger(), nullable=True),
        sa.Column(
            "label_source",
            sa.Enum(
                "confirmed",
                "corrected",
                "aligned",
                name="label_source",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=True,
        ),
        sa.Column("labelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(label IS NULL AND label_source IS NULL AND labelled_at IS NULL)"
            " OR (label IS NOT NULL AND label_source IS NOT NULL AND labelled_at IS NOT NULL)",
            name=op.f("ck_digits_label_complete"),
        ),
        sa.CheckConstraint(
            "box_x >= 0 AND box_y >= 0 AND box_w > 0 AND box_h > 0", name=op.f("ck_digits_box")
        ),
        sa.CheckConstraint(
            "confidence >= 0 AND confidence <= 1", name=op.f("ck_digits_confidence")
        ),
        sa.CheckConstraint("label IS NULL OR label BETWEEN 0 AND 9", name=op.f("ck_digits_label")),
        sa.CheckConstraint("length(crop) = 784", name=op.f("ck_digits_crop_size")),
        sa.CheckConstraint("position >= 0", name=op.f("ck_digits_position")),
        sa.CheckConstraint("predicted BETWEEN 0 AND 9", name=op.f("ck_digits_predicted")),
        sa.ForeignKeyConstraint(
            ["reading_id"],
            ["readings.id"],
            name=op.f("fk_digits_reading_id_readings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digits")),
        sa.UniqueConstraint("reading_id", "position", name=op.f("uq_digits_reading_id_position")),
    )
    with op.batch_alter_table("digits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_digits_labelled_at"), ["labelled_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("digits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_digits_labelled_at"))

    op.drop_table("digits")
    with op.batch_alter_table("training_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_training_runs_started_at"))
        batch_op.drop_index(batch_op.f("ix_training_runs_model_version"))

    op.drop_table("training_runs")
    with op.batch_alter_table("readings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_readings_user_id_created_at"))
        batch_op.drop_index(batch_op.f("ix_readings_status_id"))
        batch_op.drop_index(batch_op.f("ix_readings_model_version"))
        batch_op.drop_index(batch_op.f("ix_readings_image_sha256"))

    op.drop_table("readings")
    op.drop_table("users")
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_model_versions_one_active",
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )
        batch_op.drop_index(batch_op.f("ix_model_versions_parent_version"))

    op.drop_table("model_versions")
