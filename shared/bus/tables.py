"""The outbox and inbox tables every service database has. Their DDL lives here once; each service's first
migration calls ``create_bus_tables``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from shared.db.types import UtcDateTime


def utcnow() -> datetime:
    return datetime.now(UTC)


class OutboxMessage(SQLModel, table=True):
    """An event written in the same transaction as the change it reports; the relay publishes it."""

    __tablename__ = "outbox_message"

    # The sequence: a single relay publishes in this order, which keeps per-key order on the topic.
    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    topic: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    partition_key: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    ce_type: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    headers: list[list[str]] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    payload: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=sa.Column(UtcDateTime()))
    attempts: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0"))
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text))


class InboxEntry(SQLModel, table=True):
    """An event a consumer has taken in; written in the handler's transaction so a redelivery is a no-op."""

    __tablename__ = "inbox_entry"

    consumer: str = Field(sa_column=sa.Column(sa.String(100), primary_key=True))
    event_id: str = Field(sa_column=sa.Column(sa.String(200), primary_key=True))
    ce_type: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    topic: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    partition: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    offset: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    # "processed", or "dead_lettered" when the handler kept failing and the event went to the DLQ.
    outcome: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    received_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


def create_bus_tables(op: Any) -> None:
    op.create_table(
        "outbox_message",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("partition_key", sa.String(200), nullable=False),
        sa.Column("ce_type", sa.String(200), nullable=False),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
    )
    # The relay's only query: unsent rows in sequence order. Partial, so it stays small as history grows.
    op.create_index(
        "ix_outbox_message_unsent",
        "outbox_message",
        ["id"],
        sqlite_where=sa.text("sent_at IS NULL"),
        postgresql_where=sa.text("sent_at IS NULL"),
    )
    op.create_table(
        "inbox_entry",
        sa.Column("consumer", sa.String(100), primary_key=True),
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("ce_type", sa.String(200), nullable=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )


def drop_bus_tables(op: Any) -> None:
    op.drop_table("inbox_entry")
    op.drop_index("ix_outbox_message_unsent", table_name="outbox_message")
    op.drop_table("outbox_message")
