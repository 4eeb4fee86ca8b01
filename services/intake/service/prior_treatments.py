"""The patient's prior-treatment history: record a treatment, read the history with its treatment-resistance
verdict."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlmodel import col, select

from services.intake.models import PriorTreatmentRecord
from services.intake.prior_treatment import PriorTreatment, prior_treatment_from, treatment_resistant
from services.intake.service.patients import patient_or_404
from shared.audit import record_access
from shared.auth.guard import Actor
from shared.bus.tables import utcnow
from shared.db.unit_of_work import UnitOfWork
from shared.errors import Conflict
from shared.events.intake import PriorTreatmentRecorded


@dataclass(frozen=True)
class RecordedTreatment:
    record: PriorTreatmentRecord
    treatment: PriorTreatment


@dataclass(frozen=True)
class History:
    treatments: list[RecordedTreatment]
    treatment_resistant: bool


async def record_prior_treatment(
    uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, treatment: PriorTreatment
) -> RecordedTreatment:
    patient = await patient_or_404(uow, patient_id)
    if not patient.active:
        raise Conflict("the patient is deactivated")
    # The event says whether the history, this one included, is treatment-resistant: of two treatments recorded at
    # once for one patient, the second must see the first, so they take turns.
    await uow.lock(f"prior-treatments:{patient.id}")
    earlier = await _recorded(uow, patient.id)
    record = PriorTreatmentRecord(
        patient_id=patient.id,
        kind=treatment.kind.value,
        treatment=treatment.model_dump(mode="json"),
        recorded_at=utcnow(),
        recorded_by=actor.sub,
    )
    uow.session.add(record)
    await uow.publish(
        PriorTreatmentRecorded(
            patient_id=patient.id,
            prior_treatment_id=record.id,
            **treatment.model_dump(),
            adequate=treatment.adequate,
            description=treatment.summary(),
            treatment_resistant=treatment_resistant([*(r.treatment for r in earlier), treatment]),
            recorded_at=record.recorded_at,
        )
    )
    record_access(
        uow, actor, "prior_treatment.record", patient.id, f"patients/{patient.id}/prior-treatments/{record.id}"
    )
    await uow.commit()
    return RecordedTreatment(record, treatment)


async def prior_treatment_history(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID) -> History:
    """Oldest first by start date (undated ones last), then in the order they were recorded."""
    await patient_or_404(uow, patient_id)
    recorded = await _recorded(uow, patient_id)
    record_access(uow, actor, "prior_treatment.read", patient_id, f"patients/{patient_id}/prior-treatments")
    await uow.commit()
    # A stable sort: treatments that started the same day, and undated ones, stay in the order recorded.
    recorded.sort(key=lambda r: (r.treatment.start_date is None, r.treatment.start_date or date.min))
    return History(recorded, treatment_resistant(r.treatment for r in recorded))


async def _recorded(uow: UnitOfWork, patient_id: uuid.UUID) -> list[RecordedTreatment]:
    rows = await uow.session.exec(
        select(PriorTreatmentRecord)
        .where(PriorTreatmentRecord.patient_id == patient_id)
        .order_by(col(PriorTreatmentRecord.recorded_at), col(PriorTreatmentRecord.id))
    )
    return [RecordedTreatment(row, prior_treatment_from(row.treatment)) for row in rows.all()]
