"""Measures during the course and the safety flags they raise: the shared measures router, checking patients
against sessions' own read model of intake's records."""

from __future__ import annotations

import uuid

from services.sessions.models import PatientStatus
from shared.db.unit_of_work import UnitOfWork
from shared.errors import Conflict, RecordNotFound
from shared.events.sessions import (
    InCourseAssessmentRecorded,
    InCourseSafetyFlagAcknowledged,
    InCourseSafetyFlagRaised,
)
from shared.measures.api import measures_router
from shared.measures.service import MeasureEvents

EVENTS = MeasureEvents(InCourseAssessmentRecorded, InCourseSafetyFlagRaised, InCourseSafetyFlagAcknowledged)


async def known_patient(uow: UnitOfWork, patient_id: uuid.UUID, for_change: bool) -> None:
    status = await uow.session.get(PatientStatus, patient_id)
    if status is None:
        raise RecordNotFound("patient")
    if for_change and not status.active:
        raise Conflict("the patient's record is deactivated")


router = measures_router(
    check_patient=known_patient,
    events=EVENTS,
    contexts=("in_course", "pre_session", "follow_up"),
    tag="measures during the course",
)
