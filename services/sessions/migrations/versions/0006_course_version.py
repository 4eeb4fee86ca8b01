"""A version on courses, so concurrent status changes cannot silently overwrite each other.

Revision ID: sessions_0006
Revises: sessions_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "sessions_0006"
down_revision = "sessions_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("course") as batch:
        batch.add_column(sa.Column("version", sa.Integer, nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("course") as batch:
        batch.drop_column("version")
