"""Network role: the index of the MeasureReports each held cohort has (one row per cohort and measure), so a FHIR
MeasureReport search counts and pages in the database instead of judging every cohort held on every page.

The table starts empty and the network's leader fills it when it starts leading, then checks it every hour
(``check_measure_index``, which also re-judges the cohorts whenever the code's measures change): which measures a
cohort reports is a rule of the code, not of this migration. Until the first check has finished, a search counts
only the cohorts indexed so far: the fill took 20.8 s for 16,000 cohorts on SQLite (bench/measure_reports.py).

Revision ID: outcomes_network_0003
Revises: outcomes_network_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "outcomes_network_0003"
down_revision = "outcomes_network_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "network_measure_report",
        sa.Column("site", sa.String(40), primary_key=True),
        sa.Column("indication", sa.String(40), primary_key=True),
        sa.Column("route", sa.String(40), primary_key=True),
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("cut", sa.String(20), primary_key=True),
        sa.Column("cut_value", sa.String(40), primary_key=True),
        sa.Column("measure", sa.String(40), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("network_measure_report")
