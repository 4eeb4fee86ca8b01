"""PHQ-9 severity codes in snake_case: "moderately severe" becomes "moderately_severe", as in
assessment.recorded v2.

Revision ID: intake_0005
Revises: intake_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "intake_0005"
down_revision = "intake_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sa.text("UPDATE assessment SET severity = 'moderately_severe' WHERE severity = 'moderately severe'"))


def downgrade() -> None:
    op.execute(sa.text("UPDATE assessment SET severity = 'moderately severe' WHERE severity = 'moderately_severe'"))
