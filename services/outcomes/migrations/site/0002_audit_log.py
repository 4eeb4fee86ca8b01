"""The append-only audit log.

Revision ID: outcomes_site_0002
Revises: outcomes_site_0001
"""

from alembic import op

from shared.audit import create_audit_table, drop_audit_table

revision = "outcomes_site_0002"
down_revision = "outcomes_site_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_audit_table(op)


def downgrade() -> None:
    drop_audit_table(op)
