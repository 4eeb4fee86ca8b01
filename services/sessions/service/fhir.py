"""The reads behind sessions' FHIR API, each with its own audit entry ("fhir.*"), so the log tells a FHIR client's
read from a console's (as intake's service/fhir.py)."""

from __future__ import annotations

import uuid

from sqlmodel import col, select

from services.sessions.models import Course, DosingSession, PatientStatus
from services.sessions.service.courses import session_or_404
from shared.audit import record_access
from shared.auth.guard import Actor
from shared.db.unit_of_work import UnitOfWork

SessionWithCourse = tuple[DosingSession, Course]

# The audit action of each resource type's search: fhir.<name>.search.
AUDIT_NAMES: dict[str, str] = {
    "Encounter": "encounter",
    "MedicationAdministration": "medication_administration",
    "Observation": "observation",
    "AdverseEvent": "adverse_event",
}


async def _course(uow: UnitOfWork, session: DosingSession) -> Course:
    course = await uow.session.get(Course, session.course_id)
    assert course is not None  # a foreign key
    return course


async def read_encounter(uow: UnitOfWork, actor: Actor, session_id: uuid.UUID) -> SessionWithCourse:
    session = await session_or_404(uow, session_id)
    course = await _course(uow, session)
    record_access(uow, actor, "fhir.encounter.read", session.patient_id, f"fhir/Encounter/{session.id}")
    await uow.commit()
    return session, course


async def search_sessions(
    uow: UnitOfWork,
    actor: Actor,
    resource_type: str,
    *,
    session_id: uuid.UUID | None,
    patient_id: uuid.UUID | None,
) -> list[SessionWithCourse]:
    """The sessions a search of ``resource_type`` by encounter (a session) and/or patient matches, oldest first.

    As in intake, a FHIR search that matches nothing is an empty Bundle, not an error: an unknown session or
    patient, or a session of another patient, gives no sessions and (as no record was read) no audit entry. A
    known patient's search is audited even when it finds nothing, since it tells that there is nothing."""
    if session_id is None and patient_id is None:
        raise ValueError("search by encounter or patient")
    query = "&".join(
        f"{name}={value}" for name, value in (("encounter", session_id), ("patient", patient_id)) if value is not None
    )
    if session_id is not None:
        session = await uow.session.get(DosingSession, session_id)
        if session is None or (patient_id is not None and session.patient_id != patient_id):
            return []
        found = [(session, await _course(uow, session))]
        audited_patient = session.patient_id
    else:
        assert patient_id is not None
        rows = await uow.session.exec(
            select(DosingSession, Course)
            .join(Course, col(Course.id) == col(DosingSession.course_id))
            .where(DosingSession.patient_id == patient_id)
            .order_by(col(DosingSession.starts_at), col(DosingSession.id))
        )
        found = [(session, course) for session, course in rows.all()]
        if not found and await uow.session.get(PatientStatus, patient_id) is None:
            return []
        audited_patient = patient_id
    action = f"fhir.{AUDIT_NAMES[resource_type]}.search"
    record_access(uow, actor, action, audited_patient, f"fhir/{resource_type}?{query}")
    await uow.commit()
    return found
