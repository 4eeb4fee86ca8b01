"""The dosing session record, entered at the chair as the session happens."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.sessions.api.courses import SessionRead, rules_of
from services.sessions.record import Addendum, Discharge, DissociationEntry, DoseEntry, PreDoseChecks, TherapyRecord
from services.sessions.rules import AdverseEvent, VitalsReading
from services.sessions.service import record as service
from shared.app import runtime_of
from shared.auth.guard import Actor, require
from shared.auth.permissions import Permission

router = APIRouter(prefix="/sessions/{session_id}", tags=["dosing session record"])

Monitor = Annotated[Actor, Depends(require(Permission.session_monitor))]


def _read(session: object) -> SessionRead:
    return SessionRead.model_validate(session, from_attributes=True)


class VitalsReply(BaseModel):
    session: SessionRead
    alerts: list[dict[str, Any]]


class AdverseEventReport(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    event: AdverseEvent
    action_taken: str = Field(min_length=2, max_length=2000)
    occurred_at: AwareDatetime


@router.post(
    "/pre-dose-checks",
    response_model=SessionRead,
    summary="Weight, vitals, fasting, concomitant medicines, escort; a BP above threshold needs a decision",
)
async def pre_dose_checks(session_id: uuid.UUID, body: PreDoseChecks, request: Request, actor: Monitor) -> SessionRead:
    async with runtime_of(request).unit_of_work() as uow:
        return _read(await service.record_pre_dose_checks(uow, actor, session_id, body, rules_of(request)))


@router.post(
    "/dose",
    response_model=SessionRead,
    summary="Record the dose: checked against the route's range (422 unless a clinician overrides)",
)
async def record_dose(
    session_id: uuid.UUID,
    body: DoseEntry,
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.dose_administer))],
) -> SessionRead:
    async with runtime_of(request).unit_of_work() as uow:
        return _read(await service.record_dose(uow, actor, session_id, body, rules_of(request)))


@router.post(
    "/vitals",
    status_code=status.HTTP_201_CREATED,
    response_model=VitalsReply,
    summary="Add a vitals entry; alerts are raised at the site's thresholds",
)
async def record_vitals(session_id: uuid.UUID, body: VitalsReading, request: Request, actor: Monitor) -> VitalsReply:
    async with runtime_of(request).unit_of_work() as uow:
        session, alerts = await service.record_vitals(uow, actor, session_id, body, rules_of(request))
    return VitalsReply(session=_read(session), alerts=alerts)


@router.post("/dissociation", response_model=SessionRead, summary="CADSS score and sedation level (MOAA/S)")
async def record_dissociation(
    session_id: uuid.UUID, body: DissociationEntry, request: Request, actor: Monitor
) -> SessionRead:
    async with runtime_of(request).unit_of_work() as uow:
        return _read(await service.record_dissociation(uow, actor, session_id, body))


@router.post(
    "/adverse-events",
    status_code=status.HTTP_201_CREATED,
    response_model=dict[str, Any],
    summary="Report an adverse event; a serious one is flagged for reporting",
)
async def report_adverse_event(
    session_id: uuid.UUID, body: AdverseEventReport, request: Request, actor: Monitor
) -> dict[str, Any]:
    async with runtime_of(request).unit_of_work() as uow:
        _, entry = await service.report_adverse_event(
            uow, actor, session_id, body.event, body.action_taken, body.occurred_at
        )
    return entry


@router.put("/therapy-record", response_model=SessionRead, summary="The therapist's record: modalities and notes")
async def therapy_record(session_id: uuid.UUID, body: TherapyRecord, request: Request, actor: Monitor) -> SessionRead:
    async with runtime_of(request).unit_of_work() as uow:
        return _read(await service.record_therapy(uow, actor, session_id, body))


@router.post(
    "/discharge",
    response_model=SessionRead,
    summary="Discharge: observation time passed, vitals back within thresholds, escort present (else 409)",
)
async def discharge(
    session_id: uuid.UUID,
    body: Discharge,
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.session_discharge))],
) -> SessionRead:
    async with runtime_of(request).unit_of_work() as uow:
        return _read(await service.discharge(uow, actor, session_id, body, rules_of(request)))


@router.get(
    "/monitoring",
    response_model=dict[str, Any],
    summary="Monitoring so far: gaps in the vitals timeline, the last alerts, what discharge waits for",
)
async def monitoring(session_id: uuid.UUID, request: Request, actor: Monitor) -> dict[str, Any]:
    async with runtime_of(request).unit_of_work() as uow:
        return await service.monitoring(uow, actor, session_id, rules_of(request))


@router.post("/sign", response_model=SessionRead, summary="Sign the record: after this only addenda")
async def sign(session_id: uuid.UUID, request: Request, actor: Monitor) -> SessionRead:
    async with runtime_of(request).unit_of_work() as uow:
        return _read(await service.sign(uow, actor, session_id))


@router.post(
    "/addenda",
    status_code=status.HTTP_201_CREATED,
    response_model=SessionRead,
    summary="Add an addendum to a signed record (the original stays as it was)",
)
async def add_addendum(session_id: uuid.UUID, body: Addendum, request: Request, actor: Monitor) -> SessionRead:
    async with runtime_of(request).unit_of_work() as uow:
        return _read(await service.add_addendum(uow, actor, session_id, body))
