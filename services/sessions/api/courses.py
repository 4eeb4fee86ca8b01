"""Treatment courses and the schedule of dosing sessions."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from services.sessions.api.deps import (
    Canceller,
    CourseManager,
    CoursePlanner,
    CourseReader,
    RecordReader,
    RulesDep,
    Scheduler,
    SiteZone,
    SlotReader,
)
from services.sessions.api.schemas import CourseStatusChange, SessionOutcomeNote, SessionRead, SessionSlot, course_read
from services.sessions.domain.course import CoursePlan, TreatmentCourse
from services.sessions.domain.session_record import SessionBooking, SessionStatus
from services.sessions.service import courses as service
from shared.app import UnitOfWorkDep
from shared.instants import PlausibleDate

router = APIRouter(tags=["courses and schedule"])


@router.post(
    "/courses",
    status_code=status.HTTP_201_CREATED,
    response_model=TreatmentCourse,
    summary="Plan a treatment course (eligible, consented patients without an open safety flag)",
)
async def plan_course(body: CoursePlan, actor: CoursePlanner, uow: UnitOfWorkDep, rules: RulesDep) -> TreatmentCourse:
    return course_read(await service.plan_course(uow, actor, body, rules))


@router.get("/patients/{patient_id}/courses", response_model=list[TreatmentCourse], summary="A patient's courses")
async def patient_courses(patient_id: uuid.UUID, actor: CourseReader, uow: UnitOfWorkDep) -> list[TreatmentCourse]:
    return [course_read(c) for c in await service.patient_courses(uow, actor, patient_id)]


@router.get("/courses/{course_id}", response_model=TreatmentCourse, summary="One course")
async def get_course(course_id: uuid.UUID, actor: CourseReader, uow: UnitOfWorkDep) -> TreatmentCourse:
    return course_read(await service.read_course(uow, actor, course_id))


@router.post(
    "/courses/{course_id}/status",
    response_model=TreatmentCourse,
    summary="Start, hold, resume, complete or discontinue a course",
)
async def change_course_status(
    course_id: uuid.UUID, body: CourseStatusChange, actor: CourseManager, uow: UnitOfWorkDep, rules: RulesDep
) -> TreatmentCourse:
    return course_read(await service.change_course_status(uow, actor, course_id, body.status, body.reason, rules))


@router.post(
    "/courses/{course_id}/sessions",
    status_code=status.HTTP_201_CREATED,
    response_model=SessionSlot,
    summary="Schedule a dosing session (no double booking; the weekly cap; the minimum interval)",
)
async def schedule_session(
    course_id: uuid.UUID,
    body: SessionBooking,
    actor: Scheduler,
    uow: UnitOfWorkDep,
    rules: RulesDep,
    zone: SiteZone,
) -> SessionSlot:
    return SessionSlot.of(await service.schedule_session(uow, actor, course_id, body, rules, zone))


@router.get(
    "/courses/{course_id}/sessions",
    response_model=list[SessionSlot],
    summary="A course's dosing sessions as the schedule sees them (no clinical record)",
)
async def course_sessions(course_id: uuid.UUID, actor: SlotReader, uow: UnitOfWorkDep) -> list[SessionSlot]:
    return [SessionSlot.of(s) for s in await service.course_sessions(uow, actor, course_id)]


@router.get(
    "/sessions/{session_id}/booking",
    response_model=SessionSlot,
    summary="One dosing session as booked: when, where, who, and whether it happened (no clinical record)",
)
async def get_booking(session_id: uuid.UUID, actor: SlotReader, uow: UnitOfWorkDep) -> SessionSlot:
    return SessionSlot.of(await service.read_session(uow, actor, session_id))


@router.get("/sessions/{session_id}", response_model=SessionRead, summary="One dosing session, with its record")
async def get_session(session_id: uuid.UUID, actor: RecordReader, uow: UnitOfWorkDep) -> SessionRead:
    return SessionRead.of(await service.read_session(uow, actor, session_id))


@router.post("/sessions/{session_id}/cancel", response_model=SessionSlot, summary="Cancel, with the reason")
async def cancel_session(
    session_id: uuid.UUID, body: SessionOutcomeNote, actor: Canceller, uow: UnitOfWorkDep
) -> SessionSlot:
    return SessionSlot.of(await service.call_off(uow, actor, session_id, SessionStatus.cancelled, body.reason))


@router.post("/sessions/{session_id}/no-show", response_model=SessionSlot, summary="Record a no-show, with the reason")
async def record_no_show(
    session_id: uuid.UUID, body: SessionOutcomeNote, actor: Canceller, uow: UnitOfWorkDep
) -> SessionSlot:
    return SessionSlot.of(await service.call_off(uow, actor, session_id, SessionStatus.no_show, body.reason))


@router.get(
    "/schedule",
    response_model=list[SessionSlot],
    summary="The day's dosing sessions at the site, in the order they start (the site's calendar day)",
)
async def day_schedule(
    day: Annotated[PlausibleDate, Query(description="the site's calendar day, YYYY-MM-DD")],
    actor: SlotReader,
    uow: UnitOfWorkDep,
    zone: SiteZone,
) -> list[SessionSlot]:
    return [SessionSlot.of(s) for s in await service.day_schedule(uow, actor, day, zone)]
