"""Integration sessions and the esketamine REMS monitoring form."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status

from services.sessions.api.deps import IntegrationTherapist, RecordReader, RemsManager, RulesDep, SiteZone
from services.sessions.api.schemas import IntegrationSessionEntry, IntegrationSessionRead, RemsFormStatus, SessionRead
from services.sessions.domain.rems import RemsMonitoringForm, RemsStatus, rems_form_deadline
from services.sessions.domain.session_record import Modality, RemsFormEntry
from services.sessions.service import followup as service
from shared.app import UnitOfWorkDep

router = APIRouter(tags=["integration and REMS"])


@router.post(
    "/courses/{course_id}/integration-sessions",
    status_code=status.HTTP_201_CREATED,
    response_model=IntegrationSessionRead,
    summary="Record an integration (non-dosing) psychotherapy session",
)
async def record_integration_session(
    course_id: uuid.UUID, body: IntegrationSessionEntry, actor: IntegrationTherapist, uow: UnitOfWorkDep
) -> IntegrationSessionRead:
    modality = body.other_modality if body.modality is Modality.other and body.other_modality else body.modality.value
    entry = await service.record_integration_session(
        uow, actor, course_id, body.held_at, modality, body.notes, body.duration_minutes
    )
    return IntegrationSessionRead.of(entry)


@router.get(
    "/courses/{course_id}/integration-sessions",
    response_model=list[IntegrationSessionRead],
    summary="A course's integration sessions",
)
async def integration_sessions(
    course_id: uuid.UUID, actor: RecordReader, uow: UnitOfWorkDep
) -> list[IntegrationSessionRead]:
    return [IntegrationSessionRead.of(r) for r in await service.integration_sessions(uow, actor, course_id)]


@router.get(
    "/sessions/{session_id}/rems-form",
    response_model=RemsMonitoringForm,
    summary="The esketamine REMS patient monitoring form, filled from the session record",
)
async def rems_form(
    session_id: uuid.UUID, actor: RemsManager, uow: UnitOfWorkDep, rules: RulesDep
) -> RemsMonitoringForm:
    return await service.rems_form_from_record(uow, actor, session_id, rules)


@router.put(
    "/sessions/{session_id}/rems-form",
    response_model=SessionRead,
    summary="Complete the REMS form: what the record holds is filled in, and what is sent must agree with it",
)
async def save_rems_form(
    session_id: uuid.UUID, body: RemsFormEntry, actor: RemsManager, uow: UnitOfWorkDep, rules: RulesDep
) -> SessionRead:
    return SessionRead.of(await service.save_rems_form(uow, actor, session_id, body, rules))


@router.post(
    "/sessions/{session_id}/rems-form/submit",
    response_model=SessionRead,
    summary="Mark the REMS form submitted (due within 7 days of the session, on the site's calendar)",
)
async def submit_rems_form(session_id: uuid.UUID, actor: RemsManager, uow: UnitOfWorkDep) -> SessionRead:
    return SessionRead.of(await service.submit_rems_form(uow, actor, session_id))


@router.get("/rems-forms", response_model=list[RemsFormStatus], summary="Esketamine sessions whose REMS form is due")
async def rems_forms(
    actor: RemsManager,
    uow: UnitOfWorkDep,
    zone: SiteZone,
    status_: Annotated[Literal["due", "overdue"] | None, Query(alias="status")] = None,
) -> list[RemsFormStatus]:
    wanted = {RemsStatus(status_)} if status_ else {RemsStatus.due, RemsStatus.overdue}
    found = await service.rems_forms_outstanding(uow, actor, wanted, zone)
    return [
        RemsFormStatus(
            session_id=f.session.chart.id,
            patient_id=f.session.chart.patient_id,
            discharged_at=f.discharged_at,
            deadline=rems_form_deadline(f.discharged_at, zone).isoformat(),
            status=f.status,
            form=f.session.chart.rems_form,
        )
        for f in found
    ]
