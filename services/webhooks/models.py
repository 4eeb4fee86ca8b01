"""Webhooks' tables: the endpoints, their signing secrets, the delivery queue and every attempt.

A delivery's body holds the subscribing role's view of one event (patient data at a site), kept in the site's own
database until its endpoint has it; the delivery log read through the API shows its status and attempts, never
the body.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from shared.db.types import UtcDateTime


class EndpointRow(SQLModel, table=True):
    __tablename__ = "webhook_endpoint"

    id: uuid.UUID = Field(primary_key=True)
    url: str = Field(sa_column=sa.Column(sa.String(2000), nullable=False))
    role: str = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    event_types: list[str] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    description: str | None = Field(default=None, sa_column=sa.Column(sa.String(500)))
    status: str = Field(sa_column=sa.Column(sa.String(20), nullable=False, index=True))
    consecutive_failures: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    created_by: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class SecretRow(SQLModel, table=True):
    """A signing secret; during a rotation the old one signs too until it expires."""

    __tablename__ = "webhook_secret"

    id: int | None = Field(default=None, primary_key=True)
    endpoint_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))
    secret: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    expires_at: datetime | None = Field(default=None, sa_column=sa.Column(UtcDateTime()))


class DeliveryRow(SQLModel, table=True):
    __tablename__ = "webhook_delivery"
    __table_args__ = (
        sa.UniqueConstraint("endpoint_id", "event_id"),
        sa.Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
        sa.Index("ix_webhook_delivery_key", "endpoint_id", "ordering_key", "status", "sequence"),
    )

    sequence: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(sa_column=sa.Column(sa.String(40), nullable=False, unique=True))
    endpoint_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False))
    event_id: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    event_type: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    ordering_key: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    body: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    status: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    attempts: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    first_attempt_at: datetime | None = Field(default=None, sa_column=sa.Column(UtcDateTime()))
    next_attempt_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    last_attempt_at: datetime | None = Field(default=None, sa_column=sa.Column(UtcDateTime()))
    last_response_status: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.String(300)))
    delivered_at: datetime | None = Field(default=None, sa_column=sa.Column(UtcDateTime()))
    queued_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class AttemptRow(SQLModel, table=True):
    __tablename__ = "webhook_attempt"

    id: int | None = Field(default=None, primary_key=True)
    delivery_sequence: int = Field(sa_column=sa.Column(sa.Integer, nullable=False, index=True))
    attempted_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    response_status: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    error: str | None = Field(default=None, sa_column=sa.Column(sa.String(300)))
    duration_ms: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
