"""Billing's read model of the patient's prior-treatment history, from intake's ``prior_treatment.recorded``: the
evidence a payer asks for before it authorises treatment (antidepressant trials with their dose and duration,
psychotherapy, ECT, TMS). Billing keeps each treatment in words, as intake wrote it for a payer."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel, col, select

from shared.db.types import UtcDateTime
from shared.db.unit_of_work import UnitOfWork
from shared.events.envelope import CloudEvent
from shared.events.intake import PriorTreatmentRecorded
from shared.events.registry import DomainEvent
from shared.prior_treatment import PriorTreatmentKind


class BillingPriorTreatment(SQLModel, table=True):
    __tablename__ = "billing_prior_treatment"

    prior_treatment_id: uuid.UUID = Field(primary_key=True)
    patient_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))
    kind: str = Field(sa_column=sa.Column(sa.String(30), nullable=False))
    summary: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    # An antidepressant trial's adequacy as intake judged it; null for other kinds and unlisted drugs.
    adequate: bool | None = Field(default=None, sa_column=sa.Column(sa.Boolean))
    recorded_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


async def on_prior_treatment_recorded(uow: UnitOfWork, event: DomainEvent, envelope: CloudEvent) -> None:
    """Upsert by the treatment's id: delivered twice, or published again, it leaves one row with the latest."""
    assert isinstance(event, PriorTreatmentRecorded)
    row = await uow.session.get(BillingPriorTreatment, event.prior_treatment_id)
    if row is None:
        row = BillingPriorTreatment(
            prior_treatment_id=event.prior_treatment_id,
            patient_id=event.patient_id,
            kind=event.kind.value,
            summary=event.description,
            adequate=event.adequate,
            recorded_at=event.recorded_at,
        )
    else:
        row.patient_id, row.kind, row.summary = event.patient_id, event.kind.value, event.description
        row.adequate, row.recorded_at = event.adequate, event.recorded_at
    uow.session.add(row)


async def evidence_for(uow: UnitOfWork, patient_id: uuid.UUID) -> list[str]:
    """The patient's prior treatments in words, for a prior authorisation: the adequate antidepressant trials
    first (what the payer's definition of treatment resistance counts), then the rest; each group in the order
    recorded."""
    rows = await uow.session.exec(
        select(BillingPriorTreatment)
        .where(BillingPriorTreatment.patient_id == patient_id)
        .order_by(col(BillingPriorTreatment.recorded_at), col(BillingPriorTreatment.prior_treatment_id))
    )
    found = list(rows.all())

    def adequate_trial(row: BillingPriorTreatment) -> bool:
        return row.kind == PriorTreatmentKind.antidepressant_trial.value and row.adequate is True

    # A stable sort: within each group the order recorded stays.
    found.sort(key=lambda row: not adequate_trial(row))
    return [row.summary for row in found]
