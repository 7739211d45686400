"""Health as recorded facts (latest on the environment, history in health_checks); API tokens.

Revision ID: 0006_health
Revises: 0012_loadtest_verdicts
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_health"
down_revision = "0012_loadtest_verdicts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("environments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("health_status", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("health_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("health_at", sa.DateTime(), nullable=True))
    op.create_table(
        "health_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_health_checks_environment_id_environments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_checks")),
    )
    with op.batch_alter_table("health_checks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_health_checks_environment_id_id", ["environment_id", "id"], unique=False
        )
    with op.batch_alter_table("loadtest_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_loadtest_runs_environment_id", ["environment", "id"], unique=False
        )
        batch_op.create_index("ix_loadtest_runs_plan_id", ["plan", "id"], unique=False)
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_action_id", ["action", "id"], unique=False)
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("env_type", sa.String(length=40), nullable=True),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_tokens_prefix")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_action_id")
    with op.batch_alter_table("loadtest_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_loadtest_runs_plan_id")
        batch_op.drop_index("ix_loadtest_runs_environment_id")
    with op.batch_alter_table("health_checks", schema=None) as batch_op:
        batch_op.drop_index("ix_health_checks_environment_id_id")
    op.drop_table("health_checks")
    with op.batch_alter_table("environments", schema=None) as batch_op:
        batch_op.drop_column("health_at")
        batch_op.drop_column("health_reason")
        batch_op.drop_column("health_status")
