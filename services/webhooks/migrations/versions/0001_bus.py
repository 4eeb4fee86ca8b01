"""The outbox and inbox.

Revision ID: webhooks_0001
Revises:
"""

from alembic import op

from shared.bus.tables import create_bus_tables, drop_bus_tables

revision = "webhooks_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_bus_tables(op)


def downgrade() -> None:
    drop_bus_tables(op)
