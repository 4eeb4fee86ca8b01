"""The full patient record, consent documents and signatures, screenings, assessments and safety flags.

Revision ID: intake_0003
Revises: intake_0002
"""

import sqlalchemy as sa
from alembic import op

from shared.measures.models import create_measure_tables, drop_measure_tables

revision = "intake_0003"
down_revision = "intake_0002"
branch_labels = None
depends_on = None

PATIENT_COLUMNS = [
    sa.Column("preferred_name", sa.String(100)),
    sa.Column("contact", sa.JSON, nullable=False, server_default="{}"),
    sa.Column("address", sa.JSON),
    sa.Column("emergency_contact", sa.JSON),
    sa.Column("preferred_language", sa.String(20), nullable=False, server_default="en"),
    sa.Column("referral_source", sa.String(30), nullable=False, server_default="self"),
    sa.Column("referral_detail", sa.Text),
    sa.Column("coverage", sa.JSON, nullable=False, server_default='{"self_pay": true}'),
    sa.Column("deactivated_at", sa.DateTime(timezone=True)),
    sa.Column("deactivation_reason", sa.Text),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
]


def upgrade() -> None:
    with op.batch_alter_table("patient") as batch:
        for column in PATIENT_COLUMNS:
            batch.add_column(column)
    op.create_index("ix_patient_family_name", "patient", [sa.text("lower(family_name)")])
    op.create_index("ix_patient_birth_date", "patient", ["birth_date"])
    op.create_table(
        "consent_document",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("version", sa.String(40), nullable=False, unique=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("effective_date", sa.Date, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "consent",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("patient_id", sa.Uuid, sa.ForeignKey("patient.id"), nullable=False, index=True),
        sa.Column("document_id", sa.Integer, sa.ForeignKey("consent_document.id"), nullable=False),
        sa.Column("document_version", sa.String(40), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("witnessed_by", sa.String(200), nullable=False),
        sa.Column("informed_off_label_use", sa.Boolean, nullable=False),
        sa.Column("informed_adverse_reactions", sa.Boolean, nullable=False),
        sa.Column("informed_no_long_term_data", sa.Boolean, nullable=False),
        sa.Column("informed_expected_cost", sa.Boolean, nullable=False),
        sa.Column("expected_cost_note", sa.Text),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True)),
        sa.Column("withdrawal_reason", sa.Text),
        sa.Column("withdrawn_by", sa.String(200)),
    )
    op.create_table(
        "screening",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("patient_id", sa.Uuid, sa.ForeignKey("patient.id"), nullable=False, index=True),
        sa.Column("screened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answers", sa.JSON, nullable=False),
        sa.Column("systolic_mmhg", sa.Integer, nullable=False),
        sa.Column("diastolic_mmhg", sa.Integer, nullable=False),
        sa.Column("bp_threshold", sa.String(20), nullable=False),
        sa.Column("outcome", sa.String(30), nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("review_decision", sa.String(20)),
        sa.Column("review_rationale", sa.Text),
        sa.Column("reviewed_by", sa.String(200)),
        sa.Column("reviewed_at", sa.DateTime(timezone=True)),
    )
    create_measure_tables(op, patient_table="patient")


def downgrade() -> None:
    drop_measure_tables(op)
    for table in ("screening", "consent", "consent_document"):
        op.drop_table(table)
    op.drop_index("ix_patient_birth_date", table_name="patient")
    op.drop_index("ix_patient_family_name", table_name="patient")
    with op.batch_alter_table("patient") as batch:
        for column in reversed(PATIENT_COLUMNS):
            batch.drop_column(column.name)
