"""Intake's tables."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from shared.db.types import UtcDateTime


class Patient(SQLModel, table=True):
    __tablename__ = "patient"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    mrn: str = Field(sa_column=sa.Column(sa.String(40), nullable=False, unique=True))
    given_name: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    family_name: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    preferred_name: str | None = Field(default=None, sa_column=sa.Column(sa.String(100)))
    birth_date: date = Field(sa_column=sa.Column(sa.Date, nullable=False))
    sex: str = Field(sa_column=sa.Column(sa.String(10), nullable=False))
    contact: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False))
    address: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON))
    emergency_contact: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON))
    preferred_language: str = Field(default="en", sa_column=sa.Column(sa.String(20), nullable=False))
    referral_source: str = Field(default="self", sa_column=sa.Column(sa.String(30), nullable=False))
    referral_detail: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    coverage: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False))
    active: bool = Field(default=True, sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.true()))
    deactivated_at: datetime | None = Field(default=None, sa_column=sa.Column(UtcDateTime()))
    deactivation_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    registered_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    # Optimistic concurrency: the ETag. SQLAlchemy bumps it on every update and refuses a stale one.
    version: int = Field(default=1, sa_column=sa.Column(sa.Integer, nullable=False, server_default="1"))

    __mapper_args__ = {"version_id_col": version.sa_column}  # type: ignore[attr-defined]


class ConsentDocument(SQLModel, table=True):
    __tablename__ = "consent_document"

    id: int | None = Field(default=None, primary_key=True)
    version: str = Field(sa_column=sa.Column(sa.String(40), nullable=False, unique=True))
    title: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    text: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    effective_date: date = Field(sa_column=sa.Column(sa.Date, nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    created_by: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))


class Consent(SQLModel, table=True):
    __tablename__ = "consent"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    patient_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, sa.ForeignKey("patient.id"), nullable=False, index=True))
    document_id: int = Field(sa_column=sa.Column(sa.Integer, sa.ForeignKey("consent_document.id"), nullable=False))
    document_version: str = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    signed_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    witnessed_by: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    informed_off_label_use: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))
    informed_adverse_reactions: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))
    informed_no_long_term_data: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))
    informed_expected_cost: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))
    expected_cost_note: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    recorded_by: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    withdrawn_at: datetime | None = Field(default=None, sa_column=sa.Column(UtcDateTime()))
    withdrawal_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    withdrawn_by: str | None = Field(default=None, sa_column=sa.Column(sa.String(200)))


class Screening(SQLModel, table=True):
    __tablename__ = "screening"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    patient_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, sa.ForeignKey("patient.id"), nullable=False, index=True))
    screened_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    answers: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    systolic_mmhg: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    diastolic_mmhg: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    bp_threshold: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    outcome: str = Field(sa_column=sa.Column(sa.String(30), nullable=False))
    reasons: list[dict[str, Any]] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    recorded_by: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    review_decision: str | None = Field(default=None, sa_column=sa.Column(sa.String(20)))
    review_rationale: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    reviewed_by: str | None = Field(default=None, sa_column=sa.Column(sa.String(200)))
    reviewed_at: datetime | None = Field(default=None, sa_column=sa.Column(UtcDateTime()))
    # Two clinicians deciding the same review at once: the second is refused (409), not silently overwritten.
    version: int = Field(default=1, sa_column=sa.Column(sa.Integer, nullable=False, server_default="1"))

    __mapper_args__ = {"version_id_col": version.sa_column}  # type: ignore[attr-defined]


class PriorTreatmentRecord(SQLModel, table=True):
    """One treatment of the patient's depression tried before kapnet. The treatment is a typed document (see
    services/intake/prior_treatment.py), stored as JSON and read back through its model only; its adequacy and
    summary are worked out from it when read, never stored beside it."""

    __tablename__ = "prior_treatment"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    patient_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, sa.ForeignKey("patient.id"), nullable=False, index=True))
    kind: str = Field(sa_column=sa.Column(sa.String(30), nullable=False))
    treatment: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    recorded_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    recorded_by: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))


# Measures and safety flags are one shared mechanism (shared/measures), used by intake and sessions alike.
from shared.measures.models import Assessment, SafetyFlag  # noqa: E402

__all__ = ["Assessment", "Consent", "ConsentDocument", "Patient", "PriorTreatmentRecord", "SafetyFlag", "Screening"]
