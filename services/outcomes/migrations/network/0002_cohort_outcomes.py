"""Network role: the latest cohort outcomes (CohortOutcomesPublished) per site x indication x route x month x cut
x cut value. The table starts empty. A new (or wiped) network database is rebuilt from the compacted network topic
by itself: the network consumer rewinds every partition its database has never processed. A network upgrading from
revision 0001 has skipped these events so far, so this migration empties the inbox and the topic is read again
(the registrations aggregate's handler keeps the latest, so the replay changes nothing there).

Revision ID: outcomes_network_0002
Revises: outcomes_network_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "outcomes_network_0002"
down_revision = "outcomes_network_0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "network_cohort_outcome",
        sa.Column("site", sa.String(40), primary_key=True),
        sa.Column("indication", sa.String(40), primary_key=True),
        sa.Column("route", sa.String(40), primary_key=True),
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("cut", sa.String(20), primary_key=True),
        sa.Column("cut_value", sa.String(40), primary_key=True),
        sa.Column("cohort_id", sa.String(32), nullable=False, unique=True),
        sa.Column("generated_at", TZ, nullable=False),
        sa.Column("outcomes", sa.JSON, nullable=False),
        sa.Column("received_at", TZ, nullable=False),
    )
    op.execute("DELETE FROM inbox_entry")  # read the network topic again into the new table (see above)


def downgrade() -> None:
    op.drop_table("network_cohort_outcome")
