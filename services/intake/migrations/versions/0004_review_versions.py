"""Versions on screenings, so two clinicians cannot both decide one medical review.

Revision ID: intake_0004
Revises: intake_0003
"""

import warnings

import sqlalchemy as sa
from alembic import op

revision = "intake_0004"
down_revision = "intake_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("screening") as batch:
        batch.add_column(sa.Column("version", sa.Integer, nullable=False, server_default="1"))


def downgrade() -> None:
    # SQLite recreates screening, and reflecting it reflects the patient table it refers to, whose expression
    # index lower(family_name) SQLAlchemy cannot reflect. Patient is not recreated, so its index stays.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index", sa.exc.SAWarning)
        with op.batch_alter_table("screening") as batch:
            batch.drop_column("version")
