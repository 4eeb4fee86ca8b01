"""Sessions' use cases: courses and the schedule. Each is one transaction with its audit entry and events."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlmodel import col, select

from services.sessions.domain import (
    ALLOWED_TRANSITIONS,
    CoursePlan,
    CourseStatusChange,
    PatientStanding,
    SessionBooking,
    SessionOutcomeNote,
    course_blockers,
)
from services.sessions.models import ConsentRecord, Course, DosingSession, PatientStatus
from shared.audit import record_access
from shared.auth.guard import Actor
from shared.bus.tables import utcnow
from shared.db.unit_of_work import UnitOfWork
from shared.errors import Conflict, RecordNotFound
from shared.events.sessions import (
    CoursePlanned,
    CourseStatusChanged,
    SessionCancelled,
    SessionNoShow,
    SessionScheduled,
)
from shared.treatment import OPEN_COURSE_STATUSES, CourseStatus, Route

ACTIVE_SESSION_STATUSES = ("scheduled", "in_progress", "completed")


class CourseNotAllowed(Conflict):
    pass


async def standing_of(uow: UnitOfWork, patient_id: uuid.UUID) -> PatientStanding:
    status = await uow.session.get(PatientStatus, patient_id)
    consents = (await uow.session.exec(select(ConsentRecord).where(ConsentRecord.patient_id == patient_id))).all()
    return PatientStanding(
        known=status is not None,
        active=bool(status and status.active),
        eligible=bool(status and status.eligible),
        screening_outcome=status.screening_outcome if status else None,
        consented=any(c.withdrawn_at is None for c in consents),
        ever_consented=bool(consents),
    )


async def plan_course(uow: UnitOfWork, actor: Actor, plan: CoursePlan) -> Course:
    blockers = course_blockers(await standing_of(uow, plan.patient_id))
    if blockers:
        raise CourseNotAllowed("a course cannot be planned: " + "; ".join(blockers))
    now = utcnow()
    course = Course(
        **plan.model_dump(mode="json"),
        prescriber=actor.sub,
        prescriber_name=actor.principal.name,
        status=CourseStatus.planned.value,
        planned_at=now,
        status_changed_at=now,
    )
    course.patient_id = plan.patient_id
    uow.session.add(course)
    await uow.publish(
        CoursePlanned(
            patient_id=plan.patient_id,
            course_id=course.id,
            indication=plan.indication,
            route=plan.route,
            planned_dosing_sessions=plan.planned_dosing_sessions,
            dosing_sessions_per_week=plan.dosing_sessions_per_week,
            planned_integration_sessions=plan.planned_integration_sessions,
            prescriber=actor.sub,
            planned_at=now,
        )
    )
    record_access(uow, actor, "course.plan", plan.patient_id, f"courses/{course.id}")
    await uow.commit()
    return course


async def course_or_404(uow: UnitOfWork, course_id: uuid.UUID) -> Course:
    course = await uow.session.get(Course, course_id)
    if course is None:
        raise RecordNotFound("course")
    return course


async def read_course(uow: UnitOfWork, actor: Actor, course_id: uuid.UUID) -> Course:
    course = await course_or_404(uow, course_id)
    record_access(uow, actor, "course.read", course.patient_id, f"courses/{course.id}")
    await uow.commit()
    return course


async def patient_courses(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID) -> Sequence[Course]:
    rows = await uow.session.exec(
        select(Course).where(Course.patient_id == patient_id).order_by(col(Course.planned_at).desc())
    )
    record_access(uow, actor, "course.read", patient_id, f"patients/{patient_id}/courses")
    await uow.commit()
    return rows.all()


async def change_course_status(
    uow: UnitOfWork, actor: Actor, course_id: uuid.UUID, change: CourseStatusChange
) -> Course:
    course = await course_or_404(uow, course_id)
    current = CourseStatus(course.status)
    if change.status not in ALLOWED_TRANSITIONS[current]:
        raise Conflict(f"a course that is {current.value} cannot become {change.status.value}")
    if change.status is CourseStatus.active:
        blockers = course_blockers(await standing_of(uow, course.patient_id))
        if blockers:
            raise CourseNotAllowed("the course cannot resume: " + "; ".join(blockers))
    await move_course(uow, course, change.status, change.reason)
    record_access(uow, actor, "course.status", course.patient_id, f"courses/{course.id}")
    await uow.commit()
    return course


async def put_open_courses_on_hold(uow: UnitOfWork, patient_id: uuid.UUID, reason: str) -> None:
    """Called from an event handler, inside its transaction: the hold commits with the inbox entry."""
    rows = await uow.session.exec(
        select(Course).where(Course.patient_id == patient_id, col(Course.status).in_(list(OPEN_COURSE_STATUSES)))
    )
    for course in rows.all():
        await move_course(uow, course, CourseStatus.on_hold, reason)


async def move_course(uow: UnitOfWork, course: Course, status: CourseStatus, reason: str | None) -> None:
    previous = CourseStatus(course.status)
    now = utcnow()
    course.status, course.status_reason, course.status_changed_at = status.value, reason, now
    uow.session.add(course)
    await uow.publish(
        CourseStatusChanged(
            patient_id=course.patient_id,
            course_id=course.id,
            previous_status=previous,
            status=status,
            reason=reason,
            changed_at=now,
        )
    )


# --- Schedule ----------------------------------------------------------------------------------------------


async def schedule_session(
    uow: UnitOfWork, actor: Actor, course_id: uuid.UUID, booking: SessionBooking, weekly_cap: int
) -> DosingSession:
    course = await course_or_404(uow, course_id)
    if CourseStatus(course.status) not in OPEN_COURSE_STATUSES:
        raise Conflict(f"the course is {course.status}: no session can be scheduled")
    starts_at = booking.starts_at
    ends_at = starts_at + timedelta(minutes=booking.duration_minutes)
    # Two desks booking the same room or person at once: the second waits, then sees the first's booking.
    await uow.lock(
        f"room:{booking.room}",
        f"staff:{booking.clinician}",
        f"staff:{booking.therapist}",
        f"patient:{course.patient_id}",
    )
    clashes = (
        await uow.session.exec(
            select(DosingSession).where(
                col(DosingSession.status).in_(["scheduled", "in_progress"]),
                col(DosingSession.starts_at) < ends_at,
                col(DosingSession.ends_at) > starts_at,
            )
        )
    ).all()
    for other in clashes:
        for what, mine, theirs in (
            ("room", booking.room, other.room),
            ("clinician", booking.clinician, other.clinician),
            ("therapist", booking.therapist, other.therapist),
        ):
            if mine == theirs:
                raise Conflict(
                    f"{what} {mine} is already booked {other.starts_at:%Y-%m-%d %H:%M}-{other.ends_at:%H:%M} UTC"
                )
        if other.patient_id == course.patient_id:
            raise Conflict(f"the patient already has a session at {other.starts_at:%Y-%m-%d %H:%M} UTC")
    same_week = await _sessions_in_iso_week(uow, course.patient_id, starts_at)
    over_cap = same_week >= weekly_cap
    if over_cap and booking.weekly_cap_override is None:
        raise Conflict(
            f"{same_week} dosing sessions are already booked that week, the site's cap is {weekly_cap}; "
            "a clinician may override with a reason"
        )
    if over_cap and "clinician" not in {r.value for r in actor.principal.roles}:
        raise Conflict("only a clinician may override the weekly cap")
    session = DosingSession(
        course_id=course.id,
        patient_id=course.patient_id,
        starts_at=starts_at,
        ends_at=ends_at,
        room=booking.room,
        clinician=booking.clinician,
        therapist=booking.therapist,
        status="scheduled",
        weekly_cap_override=booking.weekly_cap_override if over_cap else None,
    )
    uow.session.add(session)
    await uow.publish(
        SessionScheduled(
            patient_id=course.patient_id,
            session_id=session.id,
            course_id=course.id,
            route=Route(course.route),
            starts_at=starts_at,
            ends_at=ends_at,
            weekly_cap_overridden=over_cap,
        )
    )
    record_access(uow, actor, "session.schedule", course.patient_id, f"sessions/{session.id}")
    await uow.commit()
    return session


async def _sessions_in_iso_week(uow: UnitOfWork, patient_id: uuid.UUID, moment: datetime) -> int:
    """Dosing sessions booked (not cancelled, not missed) in the ISO week of ``moment``, in its time zone."""
    year, week, _ = moment.isocalendar()
    monday = datetime.fromisocalendar(year, week, 1).replace(tzinfo=moment.tzinfo)
    rows = await uow.session.exec(
        select(DosingSession).where(
            DosingSession.patient_id == patient_id,
            col(DosingSession.status).in_(ACTIVE_SESSION_STATUSES),
            col(DosingSession.starts_at) >= monday,
            col(DosingSession.starts_at) < monday + timedelta(days=7),
        )
    )
    return len(rows.all())


async def session_or_404(uow: UnitOfWork, session_id: uuid.UUID) -> DosingSession:
    session = await uow.session.get(DosingSession, session_id)
    if session is None:
        raise RecordNotFound("session")
    return session


async def read_session(uow: UnitOfWork, actor: Actor, session_id: uuid.UUID) -> DosingSession:
    session = await session_or_404(uow, session_id)
    record_access(uow, actor, "session.read", session.patient_id, f"sessions/{session.id}")
    await uow.commit()
    return session


async def close_unattended(
    uow: UnitOfWork, actor: Actor, session_id: uuid.UUID, note: SessionOutcomeNote, outcome: str
) -> DosingSession:
    """Cancellation or no-show: recorded with its reason, the slot freed."""
    session = await session_or_404(uow, session_id)
    # A session begun (pre-dose checks) but never dosed can still be called off, or it would stay open forever.
    undosed = session.status == "in_progress" and "dose" not in session.record
    if session.status != "scheduled" and not undosed:
        raise Conflict(f"the session is {session.status}; only a session not yet dosed can be {outcome}")
    now = utcnow()
    session.status, session.status_reason = outcome, note.reason
    uow.session.add(session)
    if outcome == "cancelled":
        await uow.publish(
            SessionCancelled(
                patient_id=session.patient_id,
                session_id=session.id,
                course_id=session.course_id,
                reason=note.reason,
                cancelled_at=now,
            )
        )
    else:
        await uow.publish(
            SessionNoShow(
                patient_id=session.patient_id,
                session_id=session.id,
                course_id=session.course_id,
                reason=note.reason,
                recorded_at=now,
            )
        )
    record_access(uow, actor, f"session.{outcome}", session.patient_id, f"sessions/{session.id}")
    await uow.commit()
    return session
