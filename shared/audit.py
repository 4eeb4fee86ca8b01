"""The audit log: every read or change of a patient's record, who did it, in which role, and its trace.

Append-only: no route updates or deletes it, and a trigger refuses UPDATE and DELETE at the database (on
PostgreSQL, TRUNCATE too). A change's entry is written in the change's own transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from sqlmodel import Field, SQLModel, col, select

from shared.auth.guard import Actor, require
from shared.auth.permissions import Permission, Role
from shared.bus.tables import utcnow
from shared.db.types import UtcDateTime
from shared.db.unit_of_work import UnitOfWork
from shared.instants import MAX_ROW_ID, UtcInstant
from shared.telemetry import current_trace_id


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_entry"

    id: int | None = Field(default=None, primary_key=True)
    recorded_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False, index=True))
    actor: str = Field(sa_column=sa.Column(sa.String(200), nullable=False, index=True))
    actor_name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    role: str = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    site: str = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    action: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    patient_id: uuid.UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid, index=True))
    resource: str = Field(sa_column=sa.Column(sa.String(300), nullable=False))
    trace_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(32)))


def record_access(uow: UnitOfWork, actor: Actor, action: str, patient_id: uuid.UUID | None, resource: str) -> None:
    """Add the entry to ``uow``: it commits with the change it records, or not at all."""
    uow.session.add(
        AuditEntry(
            recorded_at=utcnow(),
            actor=actor.principal.sub,
            actor_name=actor.principal.name,
            role=actor.role.value,
            site=actor.principal.site,
            action=action,
            patient_id=patient_id,
            resource=resource,
            trace_id=current_trace_id(),
        )
    )


def create_audit_table(op: Any) -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("actor", sa.String(200), nullable=False, index=True),
        sa.Column("actor_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("site", sa.String(40), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("patient_id", sa.Uuid, index=True),
        sa.Column("resource", sa.String(300), nullable=False),
        sa.Column("trace_id", sa.String(32)),
    )
    if dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'audit_entry is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_entry_append_only BEFORE UPDATE OR DELETE ON audit_entry "
            "FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_entry_no_truncate BEFORE TRUNCATE ON audit_entry "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_entry_append_only()"
        )
    elif dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_entry_no_{verb.lower()} BEFORE {verb} ON audit_entry "
                "BEGIN SELECT RAISE(ABORT, 'audit_entry is append-only'); END"
            )


def drop_audit_table(op: Any) -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TABLE audit_entry")
        op.execute("DROP FUNCTION audit_entry_append_only()")
    else:
        op.drop_table("audit_entry")


class AuditEntryRead(BaseModel):
    id: int
    recorded_at: datetime
    actor: str
    actor_name: str
    role: Role
    site: str
    action: str
    patient_id: uuid.UUID | None
    resource: str
    trace_id: str | None


class AuditPage(BaseModel):
    entries: list[AuditEntryRead]
    next_before_id: int | None


audit_router = APIRouter(prefix="/audit", tags=["audit"])


@audit_router.get("", response_model=AuditPage, summary="Page through the audit log, newest first")
async def read_audit_log(
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.audit_read))],
    patient_id: uuid.UUID | None = None,
    user: Annotated[str | None, Query(description="the actor's sub")] = None,
    since: UtcInstant | None = None,
    until: UtcInstant | None = None,
    before_id: Annotated[
        int | None, Query(ge=1, le=MAX_ROW_ID, description="the next_before_id of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    query = select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(limit + 1)
    if patient_id is not None:
        query = query.where(AuditEntry.patient_id == patient_id)
    if user is not None:
        query = query.where(AuditEntry.actor == user)
    if since is not None:
        query = query.where(col(AuditEntry.recorded_at) >= since)
    if until is not None:
        query = query.where(col(AuditEntry.recorded_at) < until)
    if before_id is not None:
        query = query.where(col(AuditEntry.id) < before_id)
    async with request.app.state.runtime.unit_of_work() as uow:
        rows = list((await uow.session.exec(query)).all())
    page = rows[:limit]
    return AuditPage(
        entries=[AuditEntryRead.model_validate(r, from_attributes=True) for r in page],
        next_before_id=page[-1].id if len(rows) > limit and page else None,
    )
