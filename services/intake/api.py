"""Intake's HTTP routes: thin, they validate, call the service layer and shape the reply."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from pydantic import BaseModel

from services.intake import service
from services.intake.domain import PatientRegistration
from services.intake.models import Patient
from shared.app import ServiceRuntime
from shared.auth.guard import Actor, record_not_found, require
from shared.auth.permissions import Permission

router = APIRouter(prefix="/patients", tags=["patients"])


class PatientRead(BaseModel):
    id: uuid.UUID
    mrn: str
    given_name: str
    family_name: str
    birth_date: date
    sex: str
    active: bool
    registered_at: datetime

    @classmethod
    def of(cls, patient: Patient) -> PatientRead:
        return cls.model_validate(patient, from_attributes=True)


def _runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PatientRead, summary="Register a patient")
async def register_patient(
    body: PatientRegistration,
    request: Request,
    response: Response,
    actor: Annotated[Actor, Depends(require(Permission.patient_register))],
) -> PatientRead:
    runtime = _runtime(request)
    async with runtime.unit_of_work() as uow:
        try:
            patient = await service.register_patient(uow, actor, runtime.own_site, body)
        except service.DuplicateMrn as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, f"MRN {exc} is already used at this site") from None
    response.headers["Location"] = f"/patients/{patient.id}"
    return PatientRead.of(patient)


@router.get("/{patient_id}", response_model=PatientRead, summary="One patient")
async def get_patient(
    patient_id: uuid.UUID, request: Request, actor: Annotated[Actor, Depends(require(Permission.patient_read))]
) -> PatientRead:
    async with _runtime(request).unit_of_work() as uow:
        patient = await service.read_patient(uow, actor, patient_id)
    if patient is None:
        raise record_not_found("patient")
    return PatientRead.of(patient)
