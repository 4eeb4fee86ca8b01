"""Site role: each release is numbered within its period. In development's ``beat`` period every release of a day
carries the day's boundary, so neither a reader of the network topic nor the site's own history could tell them
apart by it: the history merged a day's releases into one, and complementary suppression was solved against fewer
versions than a reader kept.

Revision ID: outcomes_site_0005
Revises: outcomes_site_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "outcomes_site_0005"
down_revision = "outcomes_site_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Versions released before have none: they are told apart by their period boundary, as they were.
    op.add_column("released_version", sa.Column("release", sa.Integer))
    op.add_column("site_release", sa.Column("releases", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("site_release") as batch:
        batch.drop_column("releases")
    with op.batch_alter_table("released_version") as batch:
        batch.drop_column("release")
