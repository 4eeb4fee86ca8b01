"""Site role: what outcomes learns of each patient's treatment (courses, doses, scores, adverse events, alerts,
safety flags, prior treatment, access barriers), the results it judged, and the follow-ups it announced.

The tables start empty. A site upgrading from revision 0002 fills them by reading its topics again from the start:
this migration empties the consumer's inbox, and the site consumer rebuilds every partition its database holds
no inbox entry of (rebuild_forgotten_partitions). Every handler finds its row by the event's id, so the replay
adds nothing twice (registrations included). Cohort keys grow longer than the registrations cohort's, so
published_aggregate.cohort widens to 200.

Revision ID: outcomes_site_0003
Revises: outcomes_site_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "outcomes_site_0003"
down_revision = "outcomes_site_0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "outcome_patient",
        sa.Column("patient_id", sa.Uuid, primary_key=True),
        sa.Column("birth_date", sa.Date, nullable=False),
        sa.Column("registered_at", TZ, nullable=False),
    )
    op.create_table(
        "outcome_course",
        sa.Column("course_id", sa.Uuid, primary_key=True),
        sa.Column("patient_id", sa.Uuid, nullable=False, index=True),
        sa.Column("indication", sa.String(40), nullable=False),
        sa.Column("route", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("planned_at", TZ, nullable=False),
        sa.Column("ended_at", TZ),
        sa.Column("end_reason", sa.Text),
    )
    op.create_table(
        "outcome_coverage",
        sa.Column("course_id", sa.Uuid, primary_key=True),
        sa.Column("payer", sa.String(20), nullable=False),
        sa.Column("determined_at", TZ, nullable=False),
    )
    op.create_table(
        "outcome_session",
        sa.Column("session_id", sa.Uuid, primary_key=True),
        sa.Column("course_id", sa.Uuid, nullable=False, index=True),
    )
    op.create_table(
        "outcome_dose",
        sa.Column("session_id", sa.Uuid, primary_key=True),
        sa.Column("course_id", sa.Uuid, nullable=False, index=True),
        sa.Column("route", sa.String(40), nullable=False),
        sa.Column("dose_mg", sa.Float, nullable=False),
        sa.Column("mg_per_kg", sa.Float),
        sa.Column("administered_at", TZ, nullable=False),
    )
    op.create_table(
        "outcome_measurement",
        sa.Column("assessment_id", sa.Uuid, primary_key=True),
        sa.Column("patient_id", sa.Uuid, nullable=False, index=True),
        sa.Column("instrument", sa.String(10), nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("context", sa.String(20), nullable=False),
        sa.Column("administered_at", TZ, nullable=False),
    )
    op.create_table(
        "outcome_adverse_event",
        sa.Column("adverse_event_id", sa.Uuid, primary_key=True),
        sa.Column("session_id", sa.Uuid, nullable=False, index=True),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("serious", sa.Boolean, nullable=False),
        sa.Column("occurred_at", TZ, nullable=False),
    )
    op.create_table(
        "outcome_vitals_alert",
        sa.Column("event_id", sa.String(100), primary_key=True),
        sa.Column("session_id", sa.Uuid, nullable=False, index=True),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("taken_at", TZ, nullable=False),
    )
    op.create_table(
        "outcome_safety_flag",
        sa.Column("flag_id", sa.Uuid, primary_key=True),
        sa.Column("patient_id", sa.Uuid, nullable=False, index=True),
        sa.Column("raised_at", TZ, nullable=False),
    )
    op.create_table(
        "outcome_prior_treatment",
        sa.Column("prior_treatment_id", sa.Uuid, primary_key=True),
        sa.Column("patient_id", sa.Uuid, nullable=False, index=True),
        sa.Column("failed_trial_of", sa.String(40)),
    )
    op.create_table(
        "outcome_barrier",
        sa.Column("barrier_id", sa.Uuid, primary_key=True),
        sa.Column("patient_id", sa.Uuid, nullable=False, index=True),
        sa.Column("course_id", sa.Uuid, index=True),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("estimated_out_of_pocket_cents", sa.Integer),
        sa.Column("recorded_at", TZ, nullable=False),
    )
    op.create_table(
        "outcome_result",
        sa.Column("course_id", sa.Uuid, primary_key=True),
        sa.Column("instrument", sa.String(10), primary_key=True),
        sa.Column("definition", sa.String(100), primary_key=True),
        sa.Column("baseline", sa.Integer),
        sa.Column("last_in_course", sa.Integer),
        sa.Column("responded", sa.Boolean),
        sa.Column("remitted", sa.Boolean),
        sa.Column("hours_to_response", sa.Float),
        sa.Column("days_to_response", sa.Integer),
        sa.Column("judged_at", TZ, nullable=False),
    )
    op.create_table(
        "followup_announced",
        sa.Column("course_id", sa.Uuid, primary_key=True),
        sa.Column("week", sa.Integer, primary_key=True),
        sa.Column("due_on", sa.Date, nullable=False),
        sa.Column("announced_at", TZ, nullable=False),
    )
    with op.batch_alter_table("published_aggregate") as batch:
        batch.alter_column("cohort", type_=sa.String(200), existing_type=sa.String(100))
    # Forget what was taken in, so the consumer reads the site's topics again into the new tables (see above).
    op.execute("DELETE FROM inbox_entry")


def downgrade() -> None:
    with op.batch_alter_table("published_aggregate") as batch:
        batch.alter_column("cohort", type_=sa.String(100), existing_type=sa.String(200))
    for table in (
        "followup_announced",
        "outcome_result",
        "outcome_barrier",
        "outcome_prior_treatment",
        "outcome_safety_flag",
        "outcome_vitals_alert",
        "outcome_adverse_event",
        "outcome_measurement",
        "outcome_dose",
        "outcome_session",
        "outcome_coverage",
        "outcome_course",
        "outcome_patient",
    ):
        op.drop_table(table)
