"""Site role, differential-privacy mode: the month's last ε spend is reserved for its release until that release
is published, so a release retried after an outage (the privacy solver's process out, the database away) does not
spend the month's budget again at every beat.

Revision ID: outcomes_site_0006
Revises: outcomes_site_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "outcomes_site_0006"
down_revision = "outcomes_site_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Spends made before hold no reservation: a release still due spends again, as it did.
    op.add_column("privacy_budget", sa.Column("reserved_for", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("privacy_budget") as batch:
        batch.drop_column("reserved_for")
