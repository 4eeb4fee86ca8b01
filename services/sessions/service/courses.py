"""Sessions' use cases for courses and the schedule: load, call the aggregate, publish, audit, commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import col, select

from services.sessions.domain.course import CoursePlan, TreatmentCourse
from services.sessions.domain.session_record import DosingSessionChart, SessionBooking, SessionStatus
from services.sessions.domain.settings import SessionRuleSettings
from services.sessions.models import Course, DosingSession
from services.sessions.service import store
from shared.audit import record_access
from shared.auth.guard import Actor
from shared.db.unit_of_work import UnitOfWork
from shared.instants import utcnow
from shared.treatment import CourseStatus


async def plan_course(uow: UnitOfWork, actor: Actor, plan: CoursePlan, rules: SessionRuleSettings) -> Course:
    standing = await store.standing_of(uow, plan.patient_id)
    course, events = TreatmentCourse.plan(plan, store.staff(actor), standing, utcnow(), rules)
    row = store.new_course_row(course)
    uow.session.add(row)
    await uow.publish_all(events)
    record_access(uow, actor, "course.plan", plan.patient_id, f"courses/{course.id}")
    await uow.commit()
    return row


async def read_course(uow: UnitOfWork, actor: Actor, course_id: uuid.UUID) -> Course:
    loaded = await store.load_course(uow, course_id)
    record_access(uow, actor, "course.read", loaded.row.patient_id, f"courses/{course_id}")
    await uow.commit()
    return loaded.row


async def patient_courses(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID) -> Sequence[Course]:
    await store.known_patient_or_404(uow, patient_id)
    rows = await uow.session.exec(
        select(Course).where(Course.patient_id == patient_id).order_by(col(Course.planned_at).desc())
    )
    record_access(uow, actor, "course.read", patient_id, f"patients/{patient_id}/courses")
    await uow.commit()
    return rows.all()


async def change_course_status(
    uow: UnitOfWork, actor: Actor, course_id: uuid.UUID, status: CourseStatus, reason: str, rules: SessionRuleSettings
) -> Course:
    loaded = await store.load_course(uow, course_id)
    standing = await store.standing_of(uow, loaded.course.patient_id)
    events = loaded.course.change_status(status, reason, standing, utcnow(), rules)
    row = store.save_course(uow, loaded)
    await uow.publish_all(events)
    record_access(uow, actor, "course.status", row.patient_id, f"courses/{course_id}")
    await uow.commit()
    return row


async def hold_open_courses(uow: UnitOfWork, patient_id: uuid.UUID, reason: str) -> None:
    """Called from an event handler, inside its transaction: the hold commits with the inbox entry."""
    now = utcnow()
    for loaded in await store.open_courses_of(uow, patient_id):
        events = loaded.course.hold(reason, now)
        store.save_course(uow, loaded)
        await uow.publish_all(events)


# --- the schedule ---------------------------------------------------------------------------------------------


async def schedule_session(
    uow: UnitOfWork,
    actor: Actor,
    course_id: uuid.UUID,
    booking: SessionBooking,
    rules: SessionRuleSettings,
    zone: ZoneInfo,
) -> store.LoadedChart:
    loaded = await store.load_course(uow, course_id)
    course = loaded.course
    # Two desks booking the same room or person at once: on PostgreSQL the second waits here, then sees the
    # first's booking; on SQLite every transaction already runs alone (shared.db.database).
    await uow.lock(
        f"room:{booking.room}",
        f"staff:{booking.clinician}",
        f"staff:{booking.therapist}",
        f"patient:{course.patient_id}",
    )
    others = await store.bookings_near(uow, course.patient_id, booking.starts_at, rules)
    chart, events = DosingSessionChart.book(
        course_id=course.id,
        patient_id=course.patient_id,
        route=course.route,
        indication=course.indication,
        course_open=course.is_open,
        booking=booking,
        by=store.staff(actor),
        others=others,
        rules=rules,
        zone=zone,
        now=utcnow(),
    )
    row = store.new_session_row(chart)
    uow.session.add(row)
    await uow.publish_all(events)
    record_access(uow, actor, "session.schedule", course.patient_id, f"sessions/{chart.id}")
    await uow.commit()
    return store.LoadedChart(row, chart, loaded)


async def course_sessions(uow: UnitOfWork, actor: Actor, course_id: uuid.UUID) -> list[store.LoadedChart]:
    """A course's dosing sessions, in the order they are booked."""
    loaded = await store.load_course(uow, course_id)
    rows = await uow.session.exec(
        select(DosingSession)
        .where(DosingSession.course_id == course_id)
        .order_by(col(DosingSession.starts_at), col(DosingSession.id))
    )
    found = [store.LoadedChart(row, store.chart_of(row, loaded.row), loaded) for row in rows.all()]
    record_access(uow, actor, "session.list", loaded.row.patient_id, f"courses/{course_id}/sessions")
    await uow.commit()
    return found


async def read_session(uow: UnitOfWork, actor: Actor, session_id: uuid.UUID) -> store.LoadedChart:
    loaded = await store.load_chart(uow, session_id)
    record_access(uow, actor, "session.read", loaded.chart.patient_id, f"sessions/{session_id}")
    await uow.commit()
    return loaded


async def call_off(
    uow: UnitOfWork, actor: Actor, session_id: uuid.UUID, outcome: SessionStatus, reason: str
) -> store.LoadedChart:
    """Cancellation or no-show: recorded with its reason, the slot freed."""
    loaded = await store.load_chart(uow, session_id)
    events = loaded.chart.call_off(outcome, reason, utcnow())
    store.save_chart(uow, loaded)
    await uow.publish_all(events)
    record_access(uow, actor, f"session.{outcome.value}", loaded.chart.patient_id, f"sessions/{session_id}")
    await uow.commit()
    return loaded


async def day_schedule(uow: UnitOfWork, actor: Actor, day: date, zone: ZoneInfo) -> list[store.LoadedChart]:
    """The site's dosing sessions that start on ``day`` in the site's time zone, in the order they start: the
    day's list at the front desk and the chair. Each patient on it is audited as read."""
    start = datetime.combine(day, time(), zone)
    end = datetime.combine(day + timedelta(days=1), time(), zone)
    rows = await uow.session.exec(
        select(DosingSession, Course)
        .join(Course, col(Course.id) == col(DosingSession.course_id))
        .where(col(DosingSession.starts_at) >= start, col(DosingSession.starts_at) < end)
        .order_by(col(DosingSession.starts_at), col(DosingSession.room), col(DosingSession.id))
    )
    found = [store.loaded_chart(row, course) for row, course in rows.all()]
    for loaded in found:
        record_access(uow, actor, "session.schedule_read", loaded.chart.patient_id, f"schedule?day={day}")
    await uow.commit()
    return found
