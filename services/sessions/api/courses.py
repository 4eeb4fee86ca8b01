"""Treatment courses and the schedule of dosing sessions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel

from services.sessions.domain import CoursePlan, CourseStatusChange, SessionBooking, SessionOutcomeNote
from services.sessions.rules import SessionRuleSettings
from services.sessions.service import courses as service
from shared.app import runtime_of
from shared.auth.guard import Actor, require
from shared.auth.permissions import Permission

router = APIRouter(tags=["courses and schedule"])


def rules_of(request: Request) -> SessionRuleSettings:
    rules: SessionRuleSettings = request.app.state.session_rules
    return rules


class CourseRead(BaseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    indication: str
    indication_other: str | None
    route: str
    planned_dosing_sessions: int
    dosing_sessions_per_week: int
    planned_integration_sessions: int
    prescriber: str
    prescriber_name: str
    status: str
    status_reason: str | None
    planned_at: datetime
    status_changed_at: datetime


class SessionSlot(BaseModel):
    """A booked dosing session as the schedule sees it: when, where, who, and whether it happened."""

    id: uuid.UUID
    course_id: uuid.UUID
    patient_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    room: str
    clinician: str
    therapist: str
    status: str
    status_reason: str | None
    weekly_cap_override: str | None


class SessionRead(SessionSlot):
    """The session with its clinical record: for clinicians and therapists."""

    record: dict[str, Any]
    signed_at: datetime | None
    signed_by: str | None
    rems_form: dict[str, Any] | None = None
    rems_submitted_at: datetime | None = None


def _course(course: object) -> CourseRead:
    return CourseRead.model_validate(course, from_attributes=True)


def _slot(session: object) -> SessionSlot:
    return SessionSlot.model_validate(session, from_attributes=True)


@router.post(
    "/courses",
    status_code=status.HTTP_201_CREATED,
    response_model=CourseRead,
    summary="Plan a treatment course (eligible and consented patients only)",
)
async def plan_course(
    body: CoursePlan, request: Request, actor: Annotated[Actor, Depends(require(Permission.course_plan))]
) -> CourseRead:
    async with runtime_of(request).unit_of_work() as uow:
        return _course(await service.plan_course(uow, actor, body))


@router.get("/patients/{patient_id}/courses", response_model=list[CourseRead], summary="A patient's courses")
async def patient_courses(
    patient_id: uuid.UUID, request: Request, actor: Annotated[Actor, Depends(require(Permission.course_read))]
) -> list[CourseRead]:
    async with runtime_of(request).unit_of_work() as uow:
        return [_course(c) for c in await service.patient_courses(uow, actor, patient_id)]


@router.get("/courses/{course_id}", response_model=CourseRead, summary="One course")
async def get_course(
    course_id: uuid.UUID, request: Request, actor: Annotated[Actor, Depends(require(Permission.course_read))]
) -> CourseRead:
    async with runtime_of(request).unit_of_work() as uow:
        return _course(await service.read_course(uow, actor, course_id))


@router.post(
    "/courses/{course_id}/status",
    response_model=CourseRead,
    summary="Start, hold, resume, complete or discontinue a course",
)
async def change_course_status(
    course_id: uuid.UUID,
    body: CourseStatusChange,
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.course_status_change))],
) -> CourseRead:
    async with runtime_of(request).unit_of_work() as uow:
        return _course(await service.change_course_status(uow, actor, course_id, body))


@router.post(
    "/courses/{course_id}/sessions",
    status_code=status.HTTP_201_CREATED,
    response_model=SessionSlot,
    summary="Schedule a dosing session (no double booking; the site's weekly cap)",
)
async def schedule_session(
    course_id: uuid.UUID,
    body: SessionBooking,
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.session_schedule))],
) -> SessionSlot:
    runtime = runtime_of(request)
    async with runtime.unit_of_work() as uow:
        session = await service.schedule_session(uow, actor, course_id, body, rules_of(request).weekly_session_cap)
    return _slot(session)


@router.get("/sessions/{session_id}", response_model=SessionRead, summary="One dosing session, with its record")
async def get_session(
    session_id: uuid.UUID,
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.session_record_read))],
) -> SessionRead:
    async with runtime_of(request).unit_of_work() as uow:
        return SessionRead.model_validate(await service.read_session(uow, actor, session_id), from_attributes=True)


@router.post("/sessions/{session_id}/cancel", response_model=SessionSlot, summary="Cancel, with the reason")
async def cancel_session(
    session_id: uuid.UUID,
    body: SessionOutcomeNote,
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.session_cancel))],
) -> SessionSlot:
    async with runtime_of(request).unit_of_work() as uow:
        return _slot(await service.close_unattended(uow, actor, session_id, body, "cancelled"))


@router.post("/sessions/{session_id}/no-show", response_model=SessionSlot, summary="Record a no-show, with the reason")
async def record_no_show(
    session_id: uuid.UUID,
    body: SessionOutcomeNote,
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.session_cancel))],
) -> SessionSlot:
    async with runtime_of(request).unit_of_work() as uow:
        return _slot(await service.close_unattended(uow, actor, session_id, body, "no_show"))
