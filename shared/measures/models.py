"""Measures (PHQ-9, GAD-7, PCL-5) and the safety flags they raise: the same tables in every service that takes
measures. The patient's own record lives elsewhere (intake's patient table, or sessions' read model), so the
ORM names no foreign key to it; intake's migration adds one at the database."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from shared.db.types import UtcDateTime


class MeasureContext(StrEnum):
    """When a measure was taken: at intake (baseline), during the course, before a session, or at a follow-up."""

    baseline = "baseline"
    in_course = "in_course"
    pre_session = "pre_session"
    follow_up = "follow_up"


class Assessment(SQLModel, table=True):
    __tablename__ = "assessment"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    patient_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))
    instrument: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    instrument_version: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    answers: list[int] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    total: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    severity: str | None = Field(default=None, sa_column=sa.Column(sa.String(40)))
    clusters: dict[str, int] | None = Field(default=None, sa_column=sa.Column(sa.JSON))
    provisional_ptsd: bool | None = Field(default=None, sa_column=sa.Column(sa.Boolean))
    cutoff: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    at_or_above_cutoff: bool | None = Field(default=None, sa_column=sa.Column(sa.Boolean))
    context: str = Field(sa_column=sa.Column(sa.String(30), nullable=False))
    administered_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    recorded_by: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))


class SafetyFlagStatus(StrEnum):
    """Open blocks planning and dosing (sessions' _may_treat); only a clinician's acknowledgement closes it."""

    open = "open"
    acknowledged = "acknowledged"


class SafetyFlag(SQLModel, table=True):
    """Open until a clinician acknowledges it with a note; never closed by a later calm answer."""

    __tablename__ = "safety_flag"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    patient_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))
    assessment_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, sa.ForeignKey("assessment.id"), nullable=False))
    reason: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    raised_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    status: SafetyFlagStatus = Field(default=SafetyFlagStatus.open, sa_column=sa.Column(sa.String(20), nullable=False))
    acknowledged_at: datetime | None = Field(default=None, sa_column=sa.Column(UtcDateTime()))
    acknowledged_by: str | None = Field(default=None, sa_column=sa.Column(sa.String(200)))
    acknowledgement_note: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    # Two acknowledgements at once: the second is refused (409), not silently overwritten.
    version: int = Field(default=1, sa_column=sa.Column(sa.Integer, nullable=False, server_default="1"))

    __mapper_args__ = {"version_id_col": version.sa_column}  # type: ignore[attr-defined]


def create_measure_tables(op: Any, *, patient_table: str | None) -> None:
    """``patient_table``: the table whose ``id`` a measure's patient_id must exist in, when the service has one."""
    patient_fk = [sa.ForeignKey(f"{patient_table}.id")] if patient_table else []
    op.create_table(
        "assessment",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("patient_id", sa.Uuid, *patient_fk, nullable=False, index=True),
        sa.Column("instrument", sa.String(20), nullable=False),
        sa.Column("instrument_version", sa.String(200), nullable=False),
        sa.Column("answers", sa.JSON, nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("severity", sa.String(40)),
        sa.Column("clusters", sa.JSON),
        sa.Column("provisional_ptsd", sa.Boolean),
        sa.Column("cutoff", sa.Integer),
        sa.Column("at_or_above_cutoff", sa.Boolean),
        sa.Column("context", sa.String(30), nullable=False),
        sa.Column("administered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "safety_flag",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column(
            "patient_id",
            sa.Uuid,
            *([sa.ForeignKey(f"{patient_table}.id")] if patient_table else []),
            nullable=False,
            index=True,
        ),
        sa.Column("assessment_id", sa.Uuid, sa.ForeignKey("assessment.id"), nullable=False),
        sa.Column("reason", sa.String(100), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
        sa.Column("acknowledged_by", sa.String(200)),
        sa.Column("acknowledgement_note", sa.Text),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    )


def drop_measure_tables(op: Any) -> None:
    op.drop_table("safety_flag")
    op.drop_table("assessment")
