"""The append-only audit log.

Revision ID: webhooks_0002
Revises: webhooks_0001
"""

from alembic import op

from shared.audit import create_audit_table, drop_audit_table

revision = "webhooks_0002"
down_revision = "webhooks_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_audit_table(op)


def downgrade() -> None:
    drop_audit_table(op)
