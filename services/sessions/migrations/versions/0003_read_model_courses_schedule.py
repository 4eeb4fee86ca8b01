"""Read model of intake's facts, treatment courses, and dosing sessions.

Revision ID: sessions_0003
Revises: sessions_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "sessions_0003"
down_revision = "sessions_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patient_status",
        sa.Column("patient_id", sa.Uuid, primary_key=True),
        sa.Column("birth_date", sa.Date),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("latest_screening_id", sa.Uuid),
        sa.Column("latest_screening_at", sa.DateTime(timezone=True)),
        sa.Column("screening_outcome", sa.String(30)),
        sa.Column("eligible", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "consent_record",
        sa.Column("consent_id", sa.Uuid, primary_key=True),
        sa.Column("patient_id", sa.Uuid, nullable=False, index=True),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "course",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("patient_id", sa.Uuid, nullable=False, index=True),
        sa.Column("indication", sa.String(40), nullable=False),
        sa.Column("indication_other", sa.String(200)),
        sa.Column("route", sa.String(40), nullable=False),
        sa.Column("planned_dosing_sessions", sa.Integer, nullable=False),
        sa.Column("dosing_sessions_per_week", sa.Integer, nullable=False),
        sa.Column("planned_integration_sessions", sa.Integer, nullable=False),
        sa.Column("prescriber", sa.String(200), nullable=False),
        sa.Column("prescriber_name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_reason", sa.Text),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "dosing_session",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("course_id", sa.Uuid, sa.ForeignKey("course.id"), nullable=False, index=True),
        sa.Column("patient_id", sa.Uuid, nullable=False, index=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("room", sa.String(60), nullable=False),
        sa.Column("clinician", sa.String(200), nullable=False),
        sa.Column("therapist", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_reason", sa.Text),
        sa.Column("weekly_cap_override", sa.Text),
        sa.Column("record", sa.JSON, nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True)),
        sa.Column("signed_by", sa.String(200)),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    )


def downgrade() -> None:
    for table in ("dosing_session", "course", "consent_record", "patient_status"):
        op.drop_table(table)
