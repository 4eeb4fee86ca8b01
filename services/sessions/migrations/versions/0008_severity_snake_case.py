"""PHQ-9 severity codes in snake_case: "moderately severe" becomes "moderately_severe", as in
assessment.recorded v2.

Revision ID: sessions_0008
Revises: sessions_0007
"""

import sqlalchemy as sa
from alembic import op

revision = "sessions_0008"
down_revision = "sessions_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sa.text("UPDATE assessment SET severity = 'moderately_severe' WHERE severity = 'moderately severe'"))


def downgrade() -> None:
    op.execute(sa.text("UPDATE assessment SET severity = 'moderately severe' WHERE severity = 'moderately_severe'"))
