"""What a deliverer is about to do with an outbox event that cannot be read back afterwards.

Revision ID: 0015_outbox_intent
Revises: 0014_slack_deliveries
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_outbox_intent"
down_revision = "0014_slack_deliveries"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("intent", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("intent")
