"""Load-test verdicts: the run's samples, gate, baseline runs, verdict line, schedule; overrides.

Revision ID: 0012_loadtest_verdicts
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_loadtest_verdicts"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("loadtest_runs") as batch:
        batch.add_column(sa.Column("gate", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("baseline_runs", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("verdict", sa.Text(), nullable=True))
        batch.add_column(sa.Column("schedule", sa.String(length=64), nullable=True))
    op.create_table(
        "loadtest_samples",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["loadtest_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id"),
    )
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("override_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("override_reason")
    op.drop_table("loadtest_samples")
    with op.batch_alter_table("loadtest_runs") as batch:
        for column in ("schedule", "verdict", "baseline_runs", "gate"):
            batch.drop_column(column)
