"""Load-test runs: load, aggregate report, criteria, verdict against the baseline run.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loadtest_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(length=40), nullable=False),
        sa.Column("environment_type", sa.String(length=40), nullable=False),
        sa.Column("release", sa.String(length=64), nullable=False),
        sa.Column("plan", sa.String(length=64), nullable=False),
        sa.Column("engine", sa.String(length=32), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("load", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.Column("criteria", sa.JSON(), nullable=True),
        sa.Column("baseline_run_id", sa.Integer(), nullable=True),
        sa.Column("comparison", sa.JSON(), nullable=True),
        sa.Column("folder", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loadtest_runs")),
    )
    with op.batch_alter_table("loadtest_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_loadtest_runs_release_plan", ["release", "plan", "environment_type"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("loadtest_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_loadtest_runs_release_plan")
    op.drop_table("loadtest_runs")
