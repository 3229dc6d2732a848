"""users.source: where a user came from (the Telegram bot or the web app).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 22:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "source",
                sa.Enum(
                    "bot",
                    "web",
                    name="source",
                    native_enum=False,
                    create_constraint=True,
                    length=16,
                ),
                server_default="bot",
                nullable=False,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_users_source"), type_="check")
        batch_op.drop_column("source")
