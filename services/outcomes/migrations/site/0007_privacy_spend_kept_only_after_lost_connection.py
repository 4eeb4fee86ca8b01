"""Site role, differential-privacy mode: a spend is now kept for a retry only after its release lost the database's
connection. Under 0006 every spend was reserved at once, and a defect, a crash or a failed write could leave it so:
such a reservation may stand for a draw whose failure depended on the noise, so none written before is trusted.

Revision ID: outcomes_site_0007
Revises: outcomes_site_0006
"""

from alembic import op

revision = "outcomes_site_0007"
down_revision = "outcomes_site_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Fail closed: a release still due spends again.
    op.execute("UPDATE privacy_budget SET reserved_for = NULL")


def downgrade() -> None:
    pass  # nothing to restore: 0006's reading of an empty column is the same
