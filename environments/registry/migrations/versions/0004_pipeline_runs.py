"""The Azure DevOps run behind a deployment: deployments.run_url, indexed.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("run_url", sa.String(length=1024), nullable=True))
        batch_op.create_index("ix_deployments_run_url", ["run_url"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_index("ix_deployments_run_url")
        batch_op.drop_column("run_url")
