"""Patients: register, search, read, update (If-Match), deactivate."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from pydantic import BaseModel

from services.intake.domain import AdministrativeSex, Deactivation, PatientRegistration, PatientUpdate
from services.intake.models import Patient
from services.intake.service import consent as consent_service
from services.intake.service import patients as service
from shared.app import runtime_of
from shared.auth.guard import Actor, require
from shared.auth.permissions import Permission
from shared.concurrency import etag, expected_version
from shared.instants import PlausibleDate

# How far a page may start: a search with more matches than this is too broad to page through.
MAX_OFFSET = 100_000

router = APIRouter(prefix="/patients", tags=["patients"])


class PatientRead(BaseModel):
    id: uuid.UUID
    mrn: str
    given_name: str
    family_name: str
    preferred_name: str | None
    birth_date: date
    sex: AdministrativeSex
    contact: dict[str, Any]
    address: dict[str, Any] | None
    emergency_contact: dict[str, Any] | None
    preferred_language: str
    referral_source: str
    referral_detail: str | None
    coverage: dict[str, Any]
    active: bool
    deactivated_at: datetime | None
    deactivation_reason: str | None
    registered_at: datetime
    version: int
    consented: bool

    @classmethod
    def of(cls, patient: Patient, consented: bool) -> PatientRead:
        fields = {name: getattr(patient, name) for name in cls.model_fields if name != "consented"}
        return cls.model_validate({**fields, "consented": consented})


class PatientPage(BaseModel):
    patients: list[PatientRead]
    total: int
    limit: int
    offset: int


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PatientRead, summary="Register a patient")
async def register_patient(
    body: PatientRegistration,
    request: Request,
    response: Response,
    actor: Annotated[Actor, Depends(require(Permission.patient_register))],
) -> PatientRead:
    runtime = runtime_of(request)
    async with runtime.unit_of_work() as uow:
        patient = await service.register_patient(uow, actor, runtime.own_site, body)
    response.headers["Location"] = f"/patients/{patient.id}"
    response.headers["ETag"] = etag(patient.version)
    return PatientRead.of(patient, consented=False)


@router.get("", response_model=PatientPage, summary="Search patients by name, date of birth or MRN")
async def search_patients(
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.patient_read))],
    name: Annotated[str | None, Query(min_length=2, max_length=100, description="part of a name")] = None,
    birth_date: PlausibleDate | None = None,
    mrn: Annotated[str | None, Query(max_length=40)] = None,
    include_inactive: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> PatientPage:
    async with runtime_of(request).unit_of_work() as uow:
        patients, total = await service.search_patients(
            uow,
            actor,
            name=name,
            birth_date=birth_date,
            mrn=mrn,
            include_inactive=include_inactive,
            limit=limit,
            offset=offset,
        )
        consented = await consent_service.consent_statuses(uow, [p.id for p in patients])
    # The same patient looks the same in a list and in a read, consent included.
    listed = [PatientRead.of(p, consented[p.id]) for p in patients]
    return PatientPage(patients=listed, total=total, limit=limit, offset=offset)


@router.get("/{patient_id}", response_model=PatientRead, summary="One patient, with its ETag")
async def get_patient(
    patient_id: uuid.UUID,
    request: Request,
    response: Response,
    actor: Annotated[Actor, Depends(require(Permission.patient_read))],
) -> PatientRead:
    async with runtime_of(request).unit_of_work() as uow:
        patient = await service.read_patient(uow, actor, patient_id)
        consented = await consent_service.consent_status(uow, patient_id)
    response.headers["ETag"] = etag(patient.version)
    return PatientRead.of(patient, consented)


@router.patch("/{patient_id}", response_model=PatientRead, summary="Change a patient's record (needs If-Match)")
async def update_patient(
    patient_id: uuid.UUID,
    body: PatientUpdate,
    request: Request,
    response: Response,
    actor: Annotated[Actor, Depends(require(Permission.patient_update))],
    if_match: Annotated[str | None, Header(description="the ETag of the version you are changing")] = None,
) -> PatientRead:
    version = expected_version(if_match)
    async with runtime_of(request).unit_of_work() as uow:
        patient = await service.update_patient(uow, actor, patient_id, version, body)
        consented = await consent_service.consent_status(uow, patient_id)
    response.headers["ETag"] = etag(patient.version)
    return PatientRead.of(patient, consented)


@router.post("/{patient_id}/deactivate", response_model=PatientRead, summary="Deactivate (records are never deleted)")
async def deactivate_patient(
    patient_id: uuid.UUID,
    body: Deactivation,
    request: Request,
    response: Response,
    actor: Annotated[Actor, Depends(require(Permission.patient_deactivate))],
) -> PatientRead:
    async with runtime_of(request).unit_of_work() as uow:
        patient = await service.deactivate_patient(uow, actor, patient_id, body)
        consented = await consent_service.consent_status(uow, patient_id)
    response.headers["ETag"] = etag(patient.version)
    return PatientRead.of(patient, consented)
