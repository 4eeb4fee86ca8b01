"""Baseline measures and safety flags: the shared measures router, checking patients in intake's records."""

from __future__ import annotations

import uuid

from services.intake.service.patients import patient_or_404
from shared.db.unit_of_work import UnitOfWork
from shared.errors import Conflict
from shared.measures.api import measures_router
from shared.measures.service import INTAKE_EVENTS


async def registered_and_active(uow: UnitOfWork, patient_id: uuid.UUID, for_change: bool) -> None:
    patient = await patient_or_404(uow, patient_id)
    if for_change and not patient.active:
        raise Conflict("the patient is deactivated")


router = measures_router(
    check_patient=registered_and_active, events=INTAKE_EVENTS, contexts=("baseline",), tag="baseline measures"
)
