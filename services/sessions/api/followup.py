"""Integration sessions and the esketamine REMS monitoring form."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, status
from pydantic import BaseModel

from services.sessions.api.courses import SessionRead
from services.sessions.record import IntegrationSessionEntry, RemsMonitoringForm
from services.sessions.rules import RemsStatus, rems_form_deadline
from services.sessions.service import followup as service
from shared.app import runtime_of
from shared.auth.guard import Actor, require
from shared.auth.permissions import Permission

router = APIRouter(tags=["integration and REMS"])


class IntegrationSessionRead(BaseModel):
    id: uuid.UUID
    course_id: uuid.UUID
    patient_id: uuid.UUID
    held_at: datetime
    modality: str
    notes: str
    duration_minutes: int
    therapist: str


class RemsFormStatus(BaseModel):
    session_id: uuid.UUID
    patient_id: uuid.UUID
    discharged_at: datetime
    deadline: str
    status: RemsStatus
    form: dict[str, Any] | None


@router.post(
    "/courses/{course_id}/integration-sessions",
    status_code=status.HTTP_201_CREATED,
    response_model=IntegrationSessionRead,
    summary="Record an integration (non-dosing) psychotherapy session",
)
async def record_integration_session(
    course_id: uuid.UUID,
    body: IntegrationSessionEntry,
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.integration_session_record))],
) -> IntegrationSessionRead:
    modality = body.other_modality if body.modality.value == "other" and body.other_modality else body.modality.value
    async with runtime_of(request).unit_of_work() as uow:
        entry = await service.record_integration_session(
            uow, actor, course_id, body.held_at, modality, body.notes, body.duration_minutes
        )
    return IntegrationSessionRead.model_validate(entry, from_attributes=True)


@router.get(
    "/courses/{course_id}/integration-sessions",
    response_model=list[IntegrationSessionRead],
    summary="A course's integration sessions",
)
async def integration_sessions(
    course_id: uuid.UUID, request: Request, actor: Annotated[Actor, Depends(require(Permission.session_record_read))]
) -> list[IntegrationSessionRead]:
    async with runtime_of(request).unit_of_work() as uow:
        rows = await service.integration_sessions(uow, actor, course_id)
    return [IntegrationSessionRead.model_validate(r, from_attributes=True) for r in rows]


@router.put(
    "/sessions/{session_id}/rems-form",
    response_model=SessionRead,
    summary="Fill in the esketamine REMS patient monitoring form",
)
async def save_rems_form(
    session_id: uuid.UUID,
    body: RemsMonitoringForm,
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.rems_form_manage))],
) -> SessionRead:
    async with runtime_of(request).unit_of_work() as uow:
        session = await service.save_rems_form(uow, actor, session_id, body.model_dump(mode="json"))
    return SessionRead.model_validate(session, from_attributes=True)


@router.post(
    "/sessions/{session_id}/rems-form/submit",
    response_model=SessionRead,
    summary="Mark the REMS form submitted (due within 7 days of the session)",
)
async def submit_rems_form(
    session_id: uuid.UUID, request: Request, actor: Annotated[Actor, Depends(require(Permission.rems_form_manage))]
) -> SessionRead:
    async with runtime_of(request).unit_of_work() as uow:
        session = await service.submit_rems_form(uow, actor, session_id)
    return SessionRead.model_validate(session, from_attributes=True)


@router.get("/rems-forms", response_model=list[RemsFormStatus], summary="Esketamine sessions whose REMS form is due")
async def rems_forms(
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.rems_form_manage))],
    status_: Annotated[Literal["due", "overdue"] | None, Query(alias="status")] = None,
) -> list[RemsFormStatus]:
    wanted = {RemsStatus(status_)} if status_ else {RemsStatus.due, RemsStatus.overdue}
    async with runtime_of(request).unit_of_work() as uow:
        found = await service.rems_forms_outstanding(uow, actor, wanted)
    return [
        RemsFormStatus(
            session_id=s.id,
            patient_id=s.patient_id,
            discharged_at=service.discharged_at(s),
            deadline=rems_form_deadline(service.discharged_at(s)).isoformat(),
            status=st,
            form=s.rems_form,
        )
        for s, st in found
    ]
