"""Esketamine REMS monitoring forms, and integration sessions.

Revision ID: sessions_0005
Revises: sessions_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "sessions_0005"
down_revision = "sessions_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dosing_session") as batch:
        batch.add_column(sa.Column("rems_form", sa.JSON))
        batch.add_column(sa.Column("rems_submitted_at", sa.DateTime(timezone=True)))
    op.create_table(
        "integration_session",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("course_id", sa.Uuid, sa.ForeignKey("course.id"), nullable=False, index=True),
        sa.Column("patient_id", sa.Uuid, nullable=False, index=True),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modality", sa.String(60), nullable=False),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("duration_minutes", sa.Integer, nullable=False),
        sa.Column("therapist", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("integration_session")
    with op.batch_alter_table("dosing_session") as batch:
        batch.drop_column("rems_submitted_at")
        batch.drop_column("rems_form")
