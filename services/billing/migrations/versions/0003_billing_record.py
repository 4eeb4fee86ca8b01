"""Billing's record: read models of patients and courses, plans, prices, assistance, coverage, prior
authorisations, Good Faith Estimates, charges, the ledger and access barriers.

Revision ID: billing_0003
Revises: billing_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "billing_0003"
down_revision = "billing_0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "billing_patient",
        sa.Column("patient_id", sa.Uuid, primary_key=True),
        sa.Column("given_name", sa.String(200)),
        sa.Column("family_name", sa.String(200)),
        sa.Column("birth_date", sa.Date),
        sa.Column("self_pay", sa.Boolean, nullable=False),
        sa.Column("payer", sa.String(200)),
        sa.Column("plan", sa.String(200)),
        sa.Column("member_id", sa.String(100)),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "billing_course",
        sa.Column("course_id", sa.Uuid, primary_key=True),
        sa.Column("patient_id", sa.Uuid, nullable=False, index=True),
        sa.Column("route", sa.String(40), nullable=False),
        sa.Column("indication", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("planned_at", TZ, nullable=False),
    )
    op.create_table(
        "plan_benefits",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("payer", sa.String(200), nullable=False),
        sa.Column("plan", sa.String(200), nullable=False),
        sa.Column("payer_type", sa.String(20), nullable=False),
        sa.Column("covers_esketamine_with_prior_auth", sa.Boolean, nullable=False),
        sa.Column("covers_off_label_ketamine", sa.Boolean, nullable=False),
        sa.Column("covers_psychotherapy", sa.Boolean, nullable=False),
        sa.UniqueConstraint("payer", "plan"),
    )
    op.create_table(
        "price",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("service", sa.String(40), nullable=False, index=True),
        sa.Column("amount_cents", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("valid_from", sa.Date, nullable=False),
        sa.Column("valid_to", sa.Date),
    )
    op.create_table(
        "financial_assistance",
        sa.Column("patient_id", sa.Uuid, primary_key=True),
        sa.Column("household_size", sa.Integer, nullable=False),
        sa.Column("household_income_cents", sa.BigInteger, nullable=False),
        sa.Column("percent_of_guideline", sa.Integer, nullable=False),
        sa.Column("discount_percent", sa.Integer, nullable=False),
        sa.Column("assessed_at", TZ, nullable=False),
    )
    op.create_table(
        "coverage_determination",
        sa.Column("course_id", sa.Uuid, primary_key=True),
        sa.Column("patient_id", sa.Uuid, nullable=False, index=True),
        sa.Column("determination", sa.JSON, nullable=False),
        sa.Column("payer_type", sa.String(20), nullable=False),
        sa.Column("determined_at", TZ, nullable=False),
    )
    op.create_table(
        "prior_authorisation",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("course_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("patient_id", sa.Uuid, nullable=False, index=True),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    )
    op.create_table(
        "good_faith_estimate",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("patient_id", sa.Uuid, nullable=False, index=True),
        sa.Column("course_id", sa.Uuid),
        sa.Column("session_id", sa.Uuid, unique=True),
        sa.Column("scheduled_on", sa.Date),
        sa.Column("service_on", sa.Date),
        sa.Column("requested_on", sa.Date),
        sa.Column("due_on", sa.Date, index=True),
        sa.Column("issued_at", TZ),
        sa.Column("document", sa.JSON),
    )
    op.create_table(
        "charge",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("patient_id", sa.Uuid, nullable=False, index=True),
        sa.Column("source_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("service_on", sa.Date, nullable=False),
    )
    op.create_table(
        "ledger_entry",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("patient_id", sa.Uuid, nullable=False, index=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("recorded_at", TZ, nullable=False),
    )
    op.create_table(
        "access_barrier",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("patient_id", sa.Uuid, nullable=False, index=True),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("recorded_at", TZ, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "access_barrier",
        "ledger_entry",
        "charge",
        "good_faith_estimate",
        "prior_authorisation",
        "coverage_determination",
        "financial_assistance",
        "price",
        "plan_benefits",
        "billing_course",
        "billing_patient",
    ):
        op.drop_table(table)
