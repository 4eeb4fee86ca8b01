"""After the dosing session: integration psychotherapy, and the esketamine REMS monitoring form."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from services.sessions.models import DosingSession, IntegrationSession
from services.sessions.rules import RemsStatus, rems_form_due
from services.sessions.service.courses import course_or_404, session_or_404
from shared.audit import record_access
from shared.auth.guard import Actor
from shared.bus.tables import utcnow
from shared.db.unit_of_work import UnitOfWork
from shared.errors import Conflict
from shared.events.sessions import IntegrationSessionCompleted
from shared.treatment import CourseStatus, Route


async def record_integration_session(
    uow: UnitOfWork,
    actor: Actor,
    course_id: uuid.UUID,
    held_at: datetime,
    modality: str,
    notes: str,
    duration_minutes: int,
) -> IntegrationSession:
    course = await course_or_404(uow, course_id)
    if CourseStatus(course.status) is CourseStatus.discontinued:
        raise Conflict("the course was discontinued")
    if held_at > utcnow():
        raise Conflict("held_at is in the future: record an integration session once it has happened")
    entry = IntegrationSession(
        course_id=course.id,
        patient_id=course.patient_id,
        held_at=held_at,
        modality=modality,
        notes=notes,
        duration_minutes=duration_minutes,
        therapist=actor.sub,
    )
    uow.session.add(entry)
    await uow.publish(
        IntegrationSessionCompleted(
            patient_id=course.patient_id,
            integration_session_id=entry.id,
            course_id=course.id,
            modality=modality,
            duration_minutes=duration_minutes,
            held_at=held_at,
        )
    )
    record_access(uow, actor, "integration_session.record", course.patient_id, f"integration-sessions/{entry.id}")
    await uow.commit()
    return entry


async def integration_sessions(uow: UnitOfWork, actor: Actor, course_id: uuid.UUID) -> Sequence[IntegrationSession]:
    course = await course_or_404(uow, course_id)
    rows = await uow.session.exec(
        select(IntegrationSession)
        .where(IntegrationSession.course_id == course_id)
        .order_by(col(IntegrationSession.held_at))
    )
    record_access(uow, actor, "integration_session.read", course.patient_id, f"courses/{course_id}")
    await uow.commit()
    return rows.all()


async def _esketamine_session(uow: UnitOfWork, session_id: uuid.UUID) -> DosingSession:
    session = await session_or_404(uow, session_id)
    dose = session.record.get("dose") or {}
    if dose.get("route") != Route.intranasal_esketamine.value:
        raise Conflict("the REMS monitoring form is for esketamine sessions only")
    if session.status != "completed":
        raise Conflict("fill in the REMS form once the patient is discharged")
    return session


async def save_rems_form(uow: UnitOfWork, actor: Actor, session_id: uuid.UUID, form: dict[str, Any]) -> DosingSession:
    session = await _esketamine_session(uow, session_id)
    if session.rems_submitted_at is not None:
        raise Conflict("the REMS form was already submitted")
    session.rems_form = {**form, "completed_by": actor.sub}
    uow.session.add(session)
    record_access(uow, actor, "rems_form.save", session.patient_id, f"sessions/{session.id}/rems-form")
    await uow.commit()
    return session


async def submit_rems_form(uow: UnitOfWork, actor: Actor, session_id: uuid.UUID) -> DosingSession:
    session = await _esketamine_session(uow, session_id)
    if session.rems_form is None:
        raise Conflict("fill in the REMS form before submitting it")
    if session.rems_submitted_at is not None:
        raise Conflict("the REMS form was already submitted")
    session.rems_submitted_at = utcnow()
    uow.session.add(session)
    record_access(uow, actor, "rems_form.submit", session.patient_id, f"sessions/{session.id}/rems-form")
    await uow.commit()
    return session


def discharged_at(session: DosingSession) -> datetime:
    discharge = session.record.get("discharge") or {}
    return datetime.fromisoformat(discharge["discharged_at"]) if discharge else session.ends_at


async def rems_forms_outstanding(
    uow: UnitOfWork, actor: Actor, wanted: set[RemsStatus]
) -> list[tuple[DosingSession, RemsStatus]]:
    """Esketamine sessions whose form is due or overdue (7 days from the session, Spravato REMS)."""
    rows = await uow.session.exec(
        select(DosingSession).where(DosingSession.status == "completed", col(DosingSession.rems_submitted_at).is_(None))
    )
    now = utcnow()
    found = []
    for session in rows.all():
        if (session.record.get("dose") or {}).get("route") != Route.intranasal_esketamine.value:
            continue
        status = rems_form_due(discharged_at(session), submitted=False, now=now)
        if status in wanted:
            found.append((session, status))
            record_access(uow, actor, "rems_form.list", session.patient_id, f"sessions/{session.id}/rems-form")
    await uow.commit()
    return sorted(found, key=lambda pair: discharged_at(pair[0]))
