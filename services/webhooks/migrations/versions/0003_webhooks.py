"""Endpoints, signing secrets, the delivery queue and its attempts.

Revision ID: webhooks_0003
Revises: webhooks_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "webhooks_0003"
down_revision = "webhooks_0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_endpoint",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("event_types", sa.JSON, nullable=False),
        sa.Column("description", sa.String(500)),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("consecutive_failures", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "webhook_secret",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("endpoint_id", sa.Uuid, nullable=False, index=True),
        sa.Column("secret", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("expires_at", TZ),
    )
    op.create_table(
        "webhook_delivery",
        sa.Column("sequence", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(40), nullable=False, unique=True),
        sa.Column("endpoint_id", sa.Uuid, nullable=False),
        sa.Column("event_id", sa.String(100), nullable=False),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("ordering_key", sa.String(200), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("first_attempt_at", TZ),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("last_attempt_at", TZ),
        sa.Column("last_response_status", sa.Integer),
        sa.Column("last_error", sa.String(300)),
        sa.Column("delivered_at", TZ),
        sa.Column("queued_at", TZ, nullable=False),
        sa.UniqueConstraint("endpoint_id", "event_id"),
    )
    op.create_index("ix_webhook_delivery_due", "webhook_delivery", ["status", "next_attempt_at"])
    op.create_index(
        "ix_webhook_delivery_key", "webhook_delivery", ["endpoint_id", "ordering_key", "status", "sequence"]
    )
    op.create_table(
        "webhook_attempt",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("delivery_sequence", sa.Integer, nullable=False, index=True),
        sa.Column("attempted_at", TZ, nullable=False),
        sa.Column("response_status", sa.Integer),
        sa.Column("error", sa.String(300)),
        sa.Column("duration_ms", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in ("webhook_attempt", "webhook_delivery", "webhook_secret", "webhook_endpoint"):
        op.drop_table(table)
