"""Network role: the latest aggregate per (site, cohort), with the outbox and inbox. No patient tables.

Revision ID: outcomes_network_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from shared.bus.tables import create_bus_tables, drop_bus_tables

revision = "outcomes_network_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_bus_tables(op)
    op.create_table(
        "network_aggregate",
        sa.Column("site", sa.String(40), primary_key=True),
        sa.Column("cohort", sa.String(100), primary_key=True),
        sa.Column("aggregate", sa.JSON, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("network_aggregate")
    drop_bus_tables(op)
