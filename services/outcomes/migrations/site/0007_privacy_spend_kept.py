"""Site role, differential-privacy mode: a spend is now kept for a retry only after its release lost the database's
connection (``kept_for``). Under 0006 every spend was reserved at once (``reserved_for``), and a defect, a crash or
a failed write could leave it so: such a reservation may stand for a draw whose failure depended on the noise. The
new column starts empty and the old one goes, so no reservation written under 0006 is ever honoured, not even one
written by an instance still running the old code during an upgrade (its spends then fail, and its releases wait:
fail closed).

Revision ID: outcomes_site_0007
Revises: outcomes_site_0006
"""

import sqlalchemy as sa
from alembic import op

revision = "outcomes_site_0007"
down_revision = "outcomes_site_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("privacy_budget") as batch:
        batch.add_column(sa.Column("kept_for", sa.DateTime(timezone=True)))
        batch.drop_column("reserved_for")


def downgrade() -> None:
    with op.batch_alter_table("privacy_budget") as batch:
        batch.add_column(sa.Column("reserved_for", sa.DateTime(timezone=True)))
        batch.drop_column("kept_for")
