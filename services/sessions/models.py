"""Sessions' tables: its own read model of intake's facts, and the treatment record it owns."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from shared.db.types import UtcDateTime


class PatientStatus(SQLModel, table=True):
    """What sessions knows of a patient, learnt from intake's events only (it never calls intake)."""

    __tablename__ = "patient_status"

    patient_id: uuid.UUID = Field(primary_key=True)
    birth_date: date | None = Field(default=None, sa_column=sa.Column(sa.Date))
    active: bool = Field(default=True, sa_column=sa.Column(sa.Boolean, nullable=False))
    latest_screening_id: uuid.UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid))
    latest_screening_at: datetime | None = Field(default=None, sa_column=sa.Column(UtcDateTime()))
    # eligible, needs_medical_review or ineligible, as screened; eligible_after_review folds in the review.
    screening_outcome: str | None = Field(default=None, sa_column=sa.Column(sa.String(30)))
    eligible: bool = Field(default=False, sa_column=sa.Column(sa.Boolean, nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class ConsentRecord(SQLModel, table=True):
    __tablename__ = "consent_record"

    consent_id: uuid.UUID = Field(primary_key=True)
    patient_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))
    signed_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    withdrawn_at: datetime | None = Field(default=None, sa_column=sa.Column(UtcDateTime()))


class Course(SQLModel, table=True):
    __tablename__ = "course"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    patient_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))
    indication: str = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    indication_other: str | None = Field(default=None, sa_column=sa.Column(sa.String(200)))
    route: str = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    planned_dosing_sessions: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    dosing_sessions_per_week: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    planned_integration_sessions: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    prescriber: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    prescriber_name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    status: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    status_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    planned_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    status_changed_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    # A clinician's status change and a consent withdrawal's hold may meet: the later one is refused, not lost.
    version: int = Field(default=1, sa_column=sa.Column(sa.Integer, nullable=False, server_default="1"))

    __mapper_args__ = {"version_id_col": version.sa_column}  # type: ignore[attr-defined]


class DosingSession(SQLModel, table=True):
    __tablename__ = "dosing_session"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    course_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, sa.ForeignKey("course.id"), nullable=False, index=True))
    patient_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))
    starts_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False, index=True))
    ends_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    room: str = Field(sa_column=sa.Column(sa.String(60), nullable=False))
    clinician: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    therapist: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    status: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    status_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    weekly_cap_override: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    # The record of the session (domain.session_record.SessionRecord as JSON), filled in as it happens; signed at
    # the end, then only addenda. Read and written through the repository only, never by key.
    record: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False))
    # From the record, as columns, so a patient's dose and weight history is a query: the first esketamine dose,
    # the minimum interval between doses, and the change from the last weight.
    dose_route: str | None = Field(default=None, sa_column=sa.Column(sa.String(40)))
    dosed_at: datetime | None = Field(default=None, sa_column=sa.Column(UtcDateTime()))
    weight_kg: float | None = Field(default=None, sa_column=sa.Column(sa.Float))
    weighed_at: datetime | None = Field(default=None, sa_column=sa.Column(UtcDateTime()))
    signed_at: datetime | None = Field(default=None, sa_column=sa.Column(UtcDateTime()))
    signed_by: str | None = Field(default=None, sa_column=sa.Column(sa.String(200)))
    # Esketamine: the REMS patient monitoring form, an administrative report kept apart from the clinical record
    # (which signing freezes); due within 7 days of the session.
    rems_form: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON))
    rems_submitted_at: datetime | None = Field(default=None, sa_column=sa.Column(UtcDateTime()))
    version: int = Field(default=1, sa_column=sa.Column(sa.Integer, nullable=False, server_default="1"))

    __mapper_args__ = {"version_id_col": version.sa_column}  # type: ignore[attr-defined]


class PatientSafetyFlag(SQLModel, table=True):
    """A PHQ-9 item-9 safety flag raised at intake, as learnt from intake's events: open until acknowledged.
    (Flags raised by sessions' own measures are in shared.measures' safety_flag table.)"""

    __tablename__ = "patient_safety_flag"

    flag_id: uuid.UUID = Field(primary_key=True)
    patient_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))
    raised_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    acknowledged_at: datetime | None = Field(default=None, sa_column=sa.Column(UtcDateTime()))


class IntegrationSession(SQLModel, table=True):
    """A non-dosing psychotherapy session that helps the patient integrate what came up while dosing."""

    __tablename__ = "integration_session"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    course_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, sa.ForeignKey("course.id"), nullable=False, index=True))
    patient_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))
    held_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    modality: str = Field(sa_column=sa.Column(sa.String(60), nullable=False))
    notes: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    duration_minutes: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    therapist: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
