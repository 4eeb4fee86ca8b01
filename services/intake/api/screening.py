"""Eligibility screening and medical review."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel

from services.intake.models import Screening
from services.intake.screening import (
    BloodPressureThreshold,
    MedicalReviewDecision,
    ScreeningAnswers,
    ScreeningOutcome,
)
from services.intake.service import screening as service
from shared.app import runtime_of
from shared.auth.guard import Actor, require
from shared.auth.permissions import Permission

router = APIRouter(prefix="/patients/{patient_id}/screenings", tags=["eligibility screening"])


class ScreeningRead(BaseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    screened_at: datetime
    answers: dict[str, Any]
    systolic_mmhg: int
    diastolic_mmhg: int
    bp_threshold: str
    outcome: ScreeningOutcome
    reasons: list[dict[str, Any]]
    review_decision: str | None
    review_rationale: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    eligible: bool

    @classmethod
    def of(cls, screening: Screening) -> ScreeningRead:
        data = {name: getattr(screening, name) for name in cls.model_fields if name != "eligible"}
        return cls(**data, eligible=service.is_eligible(screening))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ScreeningRead,
    summary="Screen for contraindications and cautions",
)
async def record_screening(
    patient_id: uuid.UUID,
    body: ScreeningAnswers,
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.screening_record))],
) -> ScreeningRead:
    runtime = runtime_of(request)
    threshold = BloodPressureThreshold(
        runtime.settings.screening_bp_threshold_systolic, runtime.settings.screening_bp_threshold_diastolic
    )
    async with runtime.unit_of_work() as uow:
        screening = await service.record_screening(uow, actor, patient_id, body, threshold)
    return ScreeningRead.of(screening)


@router.get("", response_model=list[ScreeningRead], summary="A patient's screenings, newest first")
async def patient_screenings(
    patient_id: uuid.UUID, request: Request, actor: Annotated[Actor, Depends(require(Permission.screening_read))]
) -> list[ScreeningRead]:
    async with runtime_of(request).unit_of_work() as uow:
        screenings = await service.patient_screenings(uow, actor, patient_id)
    return [ScreeningRead.of(s) for s in screenings]


@router.get("/{screening_id}", response_model=ScreeningRead, summary="One screening")
async def get_screening(
    patient_id: uuid.UUID,
    screening_id: uuid.UUID,
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.screening_read))],
) -> ScreeningRead:
    async with runtime_of(request).unit_of_work() as uow:
        screening = await service.read_screening(uow, actor, patient_id, screening_id)
    return ScreeningRead.of(screening)


@router.post(
    "/{screening_id}/medical-review",
    response_model=ScreeningRead,
    summary="A clinician approves or declines a screening that needs medical review",
)
async def decide_medical_review(
    patient_id: uuid.UUID,
    screening_id: uuid.UUID,
    body: MedicalReviewDecision,
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.medical_review_decide))],
) -> ScreeningRead:
    async with runtime_of(request).unit_of_work() as uow:
        screening = await service.decide_medical_review(uow, actor, patient_id, screening_id, body)
    return ScreeningRead.of(screening)
