"""After the dosing session: integration psychotherapy, and the esketamine REMS monitoring form."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import col, select

from services.sessions.domain.rems import RemsMonitoringForm, RemsStatus, rems_form_due
from services.sessions.domain.session_record import RemsFormEntry, SessionStatus
from services.sessions.domain.settings import SessionRuleSettings
from services.sessions.models import Course, DosingSession, IntegrationSession
from services.sessions.service import store
from shared.audit import record_access
from shared.auth.guard import Actor
from shared.db.unit_of_work import UnitOfWork
from shared.errors import Conflict, RuleRefused
from shared.events.sessions import IntegrationSessionCompleted
from shared.instants import utcnow
from shared.treatment import CourseStatus, Route

# An integration session is recorded after it happened: not ahead of the clock, and not years back (a typing
# error in the year).
INTEGRATION_RECORD_WINDOW = timedelta(days=90)


async def record_integration_session(
    uow: UnitOfWork,
    actor: Actor,
    course_id: uuid.UUID,
    held_at: datetime,
    modality: str,
    notes: str,
    duration_minutes: int,
) -> IntegrationSession:
    loaded = await store.load_course(uow, course_id)
    course = loaded.course
    if course.status is CourseStatus.discontinued:
        raise Conflict("the course was discontinued")
    now = utcnow()
    if held_at > now:
        raise RuleRefused("held_at is in the future: record an integration session once it has happened")
    if held_at < now - INTEGRATION_RECORD_WINDOW:
        raise RuleRefused(f"held_at is more than {INTEGRATION_RECORD_WINDOW.days} days ago: check the date")
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
    loaded = await store.load_course(uow, course_id)
    rows = await uow.session.exec(
        select(IntegrationSession)
        .where(IntegrationSession.course_id == course_id)
        .order_by(col(IntegrationSession.held_at))
    )
    record_access(uow, actor, "integration_session.read", loaded.course.patient_id, f"courses/{course_id}")
    await uow.commit()
    return rows.all()


async def rems_form_from_record(
    uow: UnitOfWork, actor: Actor, session_id: uuid.UUID, rules: SessionRuleSettings
) -> RemsMonitoringForm:
    """The form as the session record fills it, for the nurse to check and complete."""
    loaded = await store.load_chart(uow, session_id)
    form = loaded.chart.rems_form or loaded.chart.rems_form_from_record(rules)
    record_access(uow, actor, "rems_form.read", loaded.chart.patient_id, f"sessions/{session_id}/rems-form")
    await uow.commit()
    return form


async def save_rems_form(
    uow: UnitOfWork, actor: Actor, session_id: uuid.UUID, entry: RemsFormEntry, rules: SessionRuleSettings
) -> store.LoadedChart:
    loaded = await store.load_chart(uow, session_id)
    loaded.chart.save_rems_form(entry, store.staff(actor), rules)
    store.save_chart(uow, loaded)
    record_access(uow, actor, "rems_form.save", loaded.chart.patient_id, f"sessions/{session_id}/rems-form")
    await uow.commit()
    return loaded


async def submit_rems_form(uow: UnitOfWork, actor: Actor, session_id: uuid.UUID) -> store.LoadedChart:
    loaded = await store.load_chart(uow, session_id)
    loaded.chart.submit_rems_form(utcnow())
    store.save_chart(uow, loaded)
    record_access(uow, actor, "rems_form.submit", loaded.chart.patient_id, f"sessions/{session_id}/rems-form")
    await uow.commit()
    return loaded


@dataclass(frozen=True)
class OutstandingForm:
    session: store.LoadedChart
    discharged_at: datetime
    status: RemsStatus


async def rems_forms_outstanding(
    uow: UnitOfWork, actor: Actor, wanted: set[RemsStatus], zone: ZoneInfo
) -> list[OutstandingForm]:
    """Esketamine sessions whose form is due or overdue: 7 days from the session, on the site's calendar."""
    rows = await uow.session.exec(
        select(DosingSession, Course)
        .join(Course, col(Course.id) == col(DosingSession.course_id))
        .where(
            DosingSession.status == SessionStatus.completed.value,
            col(DosingSession.rems_submitted_at).is_(None),
            DosingSession.dose_route == Route.intranasal_esketamine.value,
        )
    )
    now = utcnow()
    found = []
    for row, course in rows.all():
        chart = store.chart_of(row, course)
        discharge = chart.record.discharge
        discharged_at = discharge.discharged_at if discharge else chart.ends_at
        status = rems_form_due(discharged_at, submitted=False, now=now, zone=zone)
        if status in wanted:
            found.append(
                OutstandingForm(
                    store.LoadedChart(row, chart, store.LoadedCourse(course, store.course_of(course))),
                    discharged_at,
                    status,
                )
            )
            record_access(uow, actor, "rems_form.list", chart.patient_id, f"sessions/{chart.id}/rems-form")
    await uow.commit()
    return sorted(found, key=lambda f: f.discharged_at)
