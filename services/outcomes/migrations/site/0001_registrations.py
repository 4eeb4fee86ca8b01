"""Site role: registrations and what was last published, with the outbox and inbox.

Revision ID: outcomes_site_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from shared.bus.tables import create_bus_tables, drop_bus_tables

revision = "outcomes_site_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_bus_tables(op)
    op.create_table(
        "registration",
        sa.Column("patient_id", sa.Uuid, primary_key=True),
        sa.Column("registered_month", sa.String(7), nullable=False, index=True),
    )
    op.create_table(
        "published_aggregate",
        sa.Column("cohort", sa.String(100), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("published_aggregate")
    op.drop_table("registration")
    drop_bus_tables(op)
