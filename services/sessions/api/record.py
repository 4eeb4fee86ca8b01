"""The dosing session record, entered at the chair as the session happens."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from services.sessions.api.deps import Discharger, Monitor, Prescriber, RulesDep, SiteZone
from services.sessions.api.schemas import SessionRead, VitalsReply
from services.sessions.domain.dosing import DoseCheck
from services.sessions.domain.session_record import (
    AddendumEntry,
    AdverseEventRecord,
    AdverseEventReport,
    DischargeEntry,
    DoseEntry,
    InfusionEndEntry,
    MonitoringView,
    PreDoseEntry,
    RecoveryCheckEntry,
    TherapyEntry,
)
from services.sessions.domain.vitals import VitalsReading
from services.sessions.service import record as service
from shared.app import UnitOfWorkDep

router = APIRouter(prefix="/sessions/{session_id}", tags=["dosing session record"])


@router.post(
    "/pre-dose-checks",
    response_model=SessionRead,
    summary="Weight (with its unit), vitals, fasting, medicines, escort; what the reading finds may need a decision",
)
async def pre_dose_checks(
    session_id: uuid.UUID, body: PreDoseEntry, actor: Monitor, uow: UnitOfWorkDep, rules: RulesDep
) -> SessionRead:
    return SessionRead.of(await service.record_pre_dose(uow, actor, session_id, body, rules))


@router.get(
    "/dose-calculation",
    response_model=DoseCheck,
    summary="The bedside calculator: the dose for the pre-dose weight, checked as recording it will check it",
)
async def dose_calculation(
    session_id: uuid.UUID,
    actor: Monitor,
    uow: UnitOfWorkDep,
    rules: RulesDep,
    zone: SiteZone,
    mg_per_kg: Annotated[float | None, Query(gt=0, le=5, description="per-kg routes (IV, IM, SC)")] = None,
    dose_mg: Annotated[float | None, Query(gt=0, le=1000, description="fixed-dose routes")] = None,
) -> DoseCheck:
    return await service.dose_calculation(uow, actor, session_id, mg_per_kg, dose_mg, rules, zone)


@router.post(
    "/dose",
    response_model=SessionRead,
    summary="Record the dose: the route's range (a clinician may override), its ceiling (no override), the rest",
)
async def record_dose(
    session_id: uuid.UUID, body: DoseEntry, actor: Prescriber, uow: UnitOfWorkDep, rules: RulesDep, zone: SiteZone
) -> SessionRead:
    return SessionRead.of(await service.record_dose(uow, actor, session_id, body, rules, zone))


@router.post(
    "/infusion-end",
    response_model=SessionRead,
    summary="Record when an IV infusion ended: observation counts from here",
)
async def record_infusion_end(
    session_id: uuid.UUID, body: InfusionEndEntry, actor: Monitor, uow: UnitOfWorkDep, rules: RulesDep
) -> SessionRead:
    return SessionRead.of(await service.record_infusion_end(uow, actor, session_id, body, rules))


@router.post(
    "/vitals",
    status_code=status.HTTP_201_CREATED,
    response_model=VitalsReply,
    summary="Add a vitals entry; alerts are raised at the site's thresholds",
)
async def record_vitals(
    session_id: uuid.UUID, body: VitalsReading, actor: Monitor, uow: UnitOfWorkDep, rules: RulesDep
) -> VitalsReply:
    loaded, alerts = await service.record_vitals(uow, actor, session_id, body, rules)
    return VitalsReply(session=SessionRead.of(loaded), alerts=alerts)


@router.post(
    "/dissociation",
    response_model=SessionRead,
    summary="A sedation and dissociation check: MOAA/S, dissociation, respiratory depression, optionally a CADSS",
)
async def record_recovery_check(
    session_id: uuid.UUID, body: RecoveryCheckEntry, actor: Monitor, uow: UnitOfWorkDep
) -> SessionRead:
    return SessionRead.of(await service.record_recovery_check(uow, actor, session_id, body))


@router.post(
    "/adverse-events",
    status_code=status.HTTP_201_CREATED,
    response_model=AdverseEventRecord,
    summary="Report an adverse event; a serious one is flagged for reporting",
)
async def report_adverse_event(
    session_id: uuid.UUID, body: AdverseEventReport, actor: Monitor, uow: UnitOfWorkDep
) -> AdverseEventRecord:
    return await service.report_adverse_event(uow, actor, session_id, body)


@router.put("/therapy-record", response_model=SessionRead, summary="The therapist's record: modalities and notes")
async def therapy_record(session_id: uuid.UUID, body: TherapyEntry, actor: Monitor, uow: UnitOfWorkDep) -> SessionRead:
    return SessionRead.of(await service.record_therapy(uow, actor, session_id, body))


@router.post(
    "/discharge",
    response_model=SessionRead,
    summary="Discharge: observation over, each vital sign back, sedation and dissociation resolved, escort (else 409)",
)
async def discharge(
    session_id: uuid.UUID, body: DischargeEntry, actor: Discharger, uow: UnitOfWorkDep, rules: RulesDep
) -> SessionRead:
    return SessionRead.of(await service.discharge(uow, actor, session_id, body, rules))


@router.get(
    "/monitoring",
    response_model=MonitoringView,
    summary="Monitoring so far: gaps in the vitals timeline, the last alerts, what discharge waits for",
)
async def monitoring(session_id: uuid.UUID, actor: Monitor, uow: UnitOfWorkDep, rules: RulesDep) -> MonitoringView:
    return await service.monitoring(uow, actor, session_id, rules)


@router.post("/sign", response_model=SessionRead, summary="Sign the record: after this only addenda")
async def sign(session_id: uuid.UUID, actor: Monitor, uow: UnitOfWorkDep) -> SessionRead:
    return SessionRead.of(await service.sign(uow, actor, session_id))


@router.post(
    "/addenda",
    status_code=status.HTTP_201_CREATED,
    response_model=SessionRead,
    summary="Add an addendum to a signed record (the original stays as it was)",
)
async def add_addendum(session_id: uuid.UUID, body: AddendumEntry, actor: Monitor, uow: UnitOfWorkDep) -> SessionRead:
    return SessionRead.of(await service.add_addendum(uow, actor, session_id, body))
