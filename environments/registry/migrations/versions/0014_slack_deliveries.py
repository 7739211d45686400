"""Slack deliveries recorded before they are acknowledged, so any replica can act on them.

Revision ID: 0014_slack_deliveries
Revises: 0013_release_builds
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_slack_deliveries"
down_revision = "0013_release_builds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_deliveries",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("taken_by", sa.String(length=128), nullable=True),
        sa.Column("taken_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_slack_deliveries")),
    )
    op.create_index(
        "ix_slack_deliveries_state_received_at", "slack_deliveries", ["state", "received_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_slack_deliveries_state_received_at", table_name="slack_deliveries")
    op.drop_table("slack_deliveries")
