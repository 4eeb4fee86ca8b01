"""Billing's read model of the prior-treatment history, on a migrated billing database (SQLite and PostgreSQL):
the handler of intake's prior_treatment.recorded, and the evidence a prior authorisation sends."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import select

from services.billing.prior_treatment import BillingPriorTreatment, evidence_for, on_prior_treatment_recorded
from shared.db.database import Database
from shared.db.unit_of_work import UnitOfWork
from shared.events import CloudEvent
from shared.events.intake import PriorTreatmentRecorded
from shared.prior_treatment import PriorTreatmentKind
from tests.conftest import ROOT, migrated_database

BILLING_MIGRATIONS = ROOT / "services" / "billing" / "migrations" / "versions"
T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
async def billing_db(new_database_url: Callable[[], str]) -> AsyncIterator[Database]:
    async with migrated_database(new_database_url(), BILLING_MIGRATIONS) as database:
        yield database


def recorded(patient_id: uuid.UUID, minutes: int, description: str, **fields: Any) -> PriorTreatmentRecorded:
    """An event as intake sends it; an antidepressant trial unless ``fields`` say otherwise."""
    data: dict[str, Any] = {"kind": PriorTreatmentKind.antidepressant_trial, "adequate": None, **fields}
    return PriorTreatmentRecorded(
        patient_id=patient_id,
        prior_treatment_id=uuid.uuid4(),
        current_episode=True,
        outcome="no_response",
        description=description,
        treatment_resistant=False,
        recorded_at=T0 + timedelta(minutes=minutes),
        **data,
    )


async def deliver(database: Database, event: PriorTreatmentRecorded) -> None:
    """As the consumer runner does: the handler in a transaction, committed after."""
    async with UnitOfWork(database, source="/test", site="north") as uow:
        envelope = CloudEvent(type=PriorTreatmentRecorded.ce_type(), source="/kapnet/north/intake", data={})
        await on_prior_treatment_recorded(uow, event, envelope)
        await uow.commit()


async def evidence(database: Database, patient_id: uuid.UUID) -> list[str]:
    async with UnitOfWork(database, source="/test", site="north") as uow:
        return await evidence_for(uow, patient_id)


async def rows(database: Database) -> int:
    async with database.sessions() as session:
        return int((await session.exec(select(func.count()).select_from(BillingPriorTreatment))).one())


async def test_evidence_lists_the_adequate_antidepressant_trials_first(billing_db: Database) -> None:
    patient, someone_else = uuid.uuid4(), uuid.uuid4()
    events = [
        recorded(
            patient, 1, "psychotherapy (CBT), 16 sessions: partial response; current episode", kind="psychotherapy"
        ),
        recorded(
            patient,
            2,
            "sertraline 25 mg/day for 8 weeks (not adequate: below the minimum effective dose of 50 mg/day): no "
            "response; current episode",
            adequate=False,
        ),
        recorded(
            patient, 3, "sertraline 150 mg/day for 8 weeks (adequate): no response; current episode", adequate=True
        ),
        recorded(patient, 4, "TMS, 36 sessions: no response; current episode", kind="tms"),
        recorded(
            patient,
            5,
            "escitalopram 20 mg/day for 6 weeks (adequate): partial response; current episode",
            adequate=True,
        ),
        recorded(
            someone_else, 6, "fluoxetine 20 mg/day for 8 weeks (adequate): no response; current episode", adequate=True
        ),
    ]
    for event in events:
        await deliver(billing_db, event)
    assert await evidence(billing_db, patient) == [
        "sertraline 150 mg/day for 8 weeks (adequate): no response; current episode",
        "escitalopram 20 mg/day for 6 weeks (adequate): partial response; current episode",
        "psychotherapy (CBT), 16 sessions: partial response; current episode",
        "sertraline 25 mg/day for 8 weeks (not adequate: below the minimum effective dose of 50 mg/day): no response; "
        "current episode",
        "TMS, 36 sessions: no response; current episode",
    ]
    assert await evidence(billing_db, uuid.uuid4()) == []


async def test_the_handler_is_idempotent_by_the_treatments_id(billing_db: Database) -> None:
    patient, treatment_id = uuid.uuid4(), uuid.uuid4()
    first = recorded(
        patient, 1, "sertraline 150 mg/day for 8 weeks (adequate): no response; current episode", adequate=True
    )
    first = first.model_copy(update={"prior_treatment_id": treatment_id})
    await deliver(billing_db, first)
    await deliver(billing_db, first)
    assert await rows(billing_db) == 1
    # Published again with other words (a later release of intake): one row, the latest words.
    again = first.model_copy(update={"description": "sertraline 150 mg/day for 8 weeks (adequate): no response"})
    await deliver(billing_db, again)
    assert await rows(billing_db) == 1
    assert await evidence(billing_db, patient) == ["sertraline 150 mg/day for 8 weeks (adequate): no response"]
    async with billing_db.sessions() as session:
        row = await session.get(BillingPriorTreatment, treatment_id)
    assert row is not None
    assert (row.patient_id, row.kind, row.adequate, row.recorded_at) == (
        patient,
        "antidepressant_trial",
        True,
        T0 + timedelta(minutes=1),
    )


async def test_an_event_as_intake_sends_it_is_read_back(billing_db: Database) -> None:
    """The event decoded from JSON, as the consumer gets it, with the fields of other kinds null."""
    patient = uuid.uuid4()
    data = {
        "patient_id": str(patient),
        "prior_treatment_id": str(uuid.uuid4()),
        "kind": "ect",
        "current_episode": False,
        "outcome": "response_then_relapse",
        "sessions": 12,
        "description": "ECT, 12 sessions: response, then relapse; earlier episode",
        "treatment_resistant": False,
        "recorded_at": "2026-03-02T15:00:00Z",
        "a_field_added_later": 1,
    }
    await deliver(billing_db, PriorTreatmentRecorded.model_validate(data))
    assert await evidence(billing_db, patient) == ["ECT, 12 sessions: response, then relapse; earlier episode"]
