"""The outbox (notifications written with the change that caused them), reply routes, and the
scheduler's job table (created here, never by the scheduler thread at start).

Revision ID: 0011_outbox
Revises: 0006_health
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_outbox"
down_revision = "0006_health"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("environment", sa.String(length=40), nullable=True),
        sa.Column("operation_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("claimed_by", sa.String(length=128), nullable=True),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("delivered_to", sa.String(length=96), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index("ix_outbox_delivered_at_id", "outbox", ["delivered_at", "id"])
    op.create_index("ix_outbox_operation_id", "outbox", ["operation_id"])
    op.create_table(
        "reply_routes",
        sa.Column("operation_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=True),
        sa.Column("thread_ts", sa.String(length=32), nullable=True),
        sa.Column("response_url", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("operation_id", name=op.f("pk_reply_routes")),
    )
    # A record the scheduler already used has the table (APScheduler made it): keep it.
    if not sa.inspect(op.get_bind()).has_table("shipyard_schedule_jobs"):
        op.create_table(
            "shipyard_schedule_jobs",
            sa.Column("id", sa.Unicode(length=191), nullable=False),
            sa.Column("next_run_time", sa.Float(precision=25), nullable=True),
            sa.Column("job_state", sa.LargeBinary(), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_shipyard_schedule_jobs")),
        )
        op.create_index(
            "ix_shipyard_schedule_jobs_next_run_time",
            "shipyard_schedule_jobs",
            ["next_run_time"],
        )


def downgrade() -> None:
    op.drop_table("reply_routes")
    op.drop_index("ix_outbox_operation_id", "outbox")
    op.drop_index("ix_outbox_delivered_at_id", "outbox")
    op.drop_table("outbox")
