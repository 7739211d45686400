"""Releases remember the build run that produced them: run id and name, artifact, source ref.

Revision ID: 0013_release_builds
Revises: 0011_outbox
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_release_builds"
down_revision = "0011_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("releases") as batch:
        batch.add_column(sa.Column("build_run", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("build_number", sa.String(length=128), server_default="", nullable=False)
        )
        batch.add_column(
            sa.Column("build_artifact", sa.String(length=256), server_default="", nullable=False)
        )
        batch.add_column(
            sa.Column("source_ref", sa.String(length=256), server_default="", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("releases") as batch:
        for column in ("source_ref", "build_artifact", "build_number", "build_run"):
            batch.drop_column(column)
