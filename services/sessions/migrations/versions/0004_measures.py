"""Measures during the course and their safety flags (the shared tables).

Revision ID: sessions_0004
Revises: sessions_0003
"""

from alembic import op

from shared.measures.models import create_measure_tables, drop_measure_tables

revision = "sessions_0004"
down_revision = "sessions_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # No patient table here: patients live in intake; sessions knows them from events only.
    create_measure_tables(op, patient_table=None)


def downgrade() -> None:
    drop_measure_tables(op)
