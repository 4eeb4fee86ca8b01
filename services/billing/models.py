"""Billing's tables: its read model of intake's and sessions' facts, and the financial record it owns.

Amounts are integer cents with their currency. Typed documents (an estimate's contents, a charge's code lines)
are stored as JSON and read back through their domain models only, never by key.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from shared.db.types import UtcDateTime


class BillingPatient(SQLModel, table=True):
    """What billing knows of a patient, from intake's events: who they are and the coverage on file."""

    __tablename__ = "billing_patient"

    patient_id: uuid.UUID = Field(primary_key=True)
    given_name: str | None = Field(default=None, sa_column=sa.Column(sa.String(200)))
    family_name: str | None = Field(default=None, sa_column=sa.Column(sa.String(200)))
    birth_date: date | None = Field(default=None, sa_column=sa.Column(sa.Date))
    self_pay: bool = Field(default=True, sa_column=sa.Column(sa.Boolean, nullable=False))
    payer: str | None = Field(default=None, sa_column=sa.Column(sa.String(200)))
    plan: str | None = Field(default=None, sa_column=sa.Column(sa.String(200)))
    member_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(100)))
    updated_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class BillingCourse(SQLModel, table=True):
    """A treatment course, from sessions' events: what is treated, by which route, and its status."""

    __tablename__ = "billing_course"

    course_id: uuid.UUID = Field(primary_key=True)
    patient_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))
    route: str = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    indication: str = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    status: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    planned_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class PlanBenefitsRow(SQLModel, table=True):
    __tablename__ = "plan_benefits"
    __table_args__ = (sa.UniqueConstraint("payer", "plan"),)

    id: int | None = Field(default=None, primary_key=True)
    payer: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    plan: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    payer_type: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    covers_esketamine_with_prior_auth: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))
    covers_off_label_ketamine: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))
    covers_psychotherapy: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))


class PriceRow(SQLModel, table=True):
    __tablename__ = "price"

    id: int | None = Field(default=None, primary_key=True)
    service: str = Field(sa_column=sa.Column(sa.String(40), nullable=False, index=True))
    amount_cents: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    currency: str = Field(sa_column=sa.Column(sa.String(3), nullable=False))
    valid_from: date = Field(sa_column=sa.Column(sa.Date, nullable=False))
    valid_to: date | None = Field(default=None, sa_column=sa.Column(sa.Date))


class AssistanceRow(SQLModel, table=True):
    """The patient's latest sliding-scale assessment."""

    __tablename__ = "financial_assistance"

    patient_id: uuid.UUID = Field(primary_key=True)
    household_size: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    household_income_cents: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    percent_of_guideline: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    discount_percent: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    assessed_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class CoverageRow(SQLModel, table=True):
    """The latest coverage determination of a course."""

    __tablename__ = "coverage_determination"

    course_id: uuid.UUID = Field(primary_key=True)
    patient_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))
    determination: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    payer_type: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    determined_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class PriorAuthRow(SQLModel, table=True):
    __tablename__ = "prior_authorisation"

    id: uuid.UUID = Field(primary_key=True)
    course_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, unique=True))
    patient_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))
    document: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    status: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    version: int = Field(default=1, sa_column=sa.Column(sa.Integer, nullable=False, server_default="1"))

    __mapper_args__ = {"version_id_col": version.sa_column}  # type: ignore[attr-defined]


class EstimateRow(SQLModel, table=True):
    """A Good Faith Estimate owed or issued: when it is due, and its contents once issued."""

    __tablename__ = "good_faith_estimate"

    id: uuid.UUID = Field(primary_key=True)
    patient_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))
    course_id: uuid.UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid))
    session_id: uuid.UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid, unique=True))
    scheduled_on: date | None = Field(default=None, sa_column=sa.Column(sa.Date))
    service_on: date | None = Field(default=None, sa_column=sa.Column(sa.Date))
    requested_on: date | None = Field(default=None, sa_column=sa.Column(sa.Date))
    due_on: date | None = Field(default=None, sa_column=sa.Column(sa.Date, index=True))
    issued_at: datetime | None = Field(default=None, sa_column=sa.Column(UtcDateTime()))
    document: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON))


class ChargeRow(SQLModel, table=True):
    __tablename__ = "charge"

    id: uuid.UUID = Field(primary_key=True)
    patient_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))
    # One charge per visit: a redelivered event finds its charge here and makes no second one.
    source_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, unique=True))
    document: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    service_on: date = Field(sa_column=sa.Column(sa.Date, nullable=False))


class LedgerEntryRow(SQLModel, table=True):
    """An invoice, a payment, a refund or a payment plan, as its domain model's JSON: only ever added."""

    __tablename__ = "ledger_entry"

    id: uuid.UUID = Field(primary_key=True)
    patient_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))
    kind: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    document: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    recorded_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class BarrierRow(SQLModel, table=True):
    __tablename__ = "access_barrier"

    id: uuid.UUID = Field(primary_key=True)
    patient_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))
    document: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    recorded_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class ClaimRow(SQLModel, table=True):
    __tablename__ = "claim"

    id: uuid.UUID = Field(primary_key=True)
    patient_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))
    course_id: uuid.UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid))
    status: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    document: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    version: int = Field(default=1, sa_column=sa.Column(sa.Integer, nullable=False, server_default="1"))

    __mapper_args__ = {"version_id_col": version.sa_column}  # type: ignore[attr-defined]
