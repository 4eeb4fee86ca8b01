"""Measures and safety flags over HTTP: one router shape for every service that takes measures."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from shared.app import runtime_of
from shared.auth.guard import Actor, require
from shared.auth.permissions import Permission
from shared.errors import InvalidRequest
from shared.instruments import AnswerError, Instrument
from shared.instruments.scoring import Severity
from shared.measures import service
from shared.measures.models import Assessment, MeasureContext, SafetyFlag, SafetyFlagStatus
from shared.measures.service import MeasureEvents, PatientCheck


class AssessmentSubmission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instrument: Instrument
    # StrictInt: "2", 2.0 and true are not answers; FastAPI names the item that is wrong.
    answers: list[StrictInt] = Field(min_length=1, max_length=40)
    context: str | None = Field(default=None, description="when in care: e.g. baseline, pre_session, in_course")


class SafetyFlagRead(BaseModel):
    id: uuid.UUID
    assessment_id: uuid.UUID
    reason: Literal["phq9_item9_above_zero"]
    raised_at: datetime
    status: SafetyFlagStatus
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    acknowledgement_note: str | None


class AssessmentRead(BaseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    instrument: Instrument
    instrument_version: str
    answers: list[int]
    total: int
    severity: Severity | None
    clusters: dict[str, int] | None
    provisional_ptsd: bool | None
    cutoff: int | None
    at_or_above_cutoff: bool | None
    context: MeasureContext
    administered_at: datetime
    # The flag this assessment raised. None means "this form raised none", never "cleared": an earlier open
    # flag stays open until a clinician acknowledges it.
    safety_flag: SafetyFlagRead | None = None

    @classmethod
    def of(cls, assessment: Assessment, flag: SafetyFlag | None = None) -> AssessmentRead:
        read = cls.model_validate(assessment, from_attributes=True)
        read.safety_flag = SafetyFlagRead.model_validate(flag, from_attributes=True) if flag else None
        return read


class Acknowledgement(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    note: str = Field(min_length=10, max_length=4000, description="what the clinician assessed and decided")


def measures_router(
    *, check_patient: PatientCheck, events: MeasureEvents, contexts: tuple[str, ...], tag: str
) -> APIRouter:
    """``contexts``: when in care a measure may be taken here; the first is the default."""
    router = APIRouter(prefix="/patients/{patient_id}", tags=[tag])

    @router.post(
        "/assessments",
        status_code=status.HTTP_201_CREATED,
        response_model=AssessmentRead,
        summary="Record and score a PHQ-9, GAD-7 or PCL-5",
    )
    async def record_assessment(
        patient_id: uuid.UUID,
        body: AssessmentSubmission,
        request: Request,
        actor: Annotated[Actor, Depends(require(Permission.assessment_record))],
    ) -> AssessmentRead:
        context = body.context or contexts[0]
        if context not in contexts:
            message = f"context must be one of {', '.join(contexts)} here"
            raise InvalidRequest(message, [("/body/context", message)])
        runtime = runtime_of(request)
        async with runtime.unit_of_work() as uow:
            try:
                assessment, flag = await service.record_assessment(
                    uow,
                    actor,
                    patient_id,
                    body.instrument,
                    body.answers,
                    pcl5_cutoff=runtime.settings.pcl5_cutoff,
                    context=context,
                    check_patient=check_patient,
                    events=events,
                )
            except AnswerError as exc:
                where = "/body/answers" if exc.item is None else f"/body/answers/{exc.item - 1}"
                raise InvalidRequest(str(exc), [(where, str(exc))]) from None
        return AssessmentRead.of(assessment, flag)

    @router.get("/assessments", response_model=list[AssessmentRead], summary="A patient's measures, oldest first")
    async def patient_assessments(
        patient_id: uuid.UUID, request: Request, actor: Annotated[Actor, Depends(require(Permission.assessment_read))]
    ) -> list[AssessmentRead]:
        async with runtime_of(request).unit_of_work() as uow:
            assessments = await service.patient_assessments(uow, actor, patient_id, check_patient)
        return [AssessmentRead.of(a) for a in assessments]

    @router.get("/safety-flags", response_model=list[SafetyFlagRead], summary="A patient's safety flags (open tasks)")
    async def safety_flags(
        patient_id: uuid.UUID,
        request: Request,
        actor: Annotated[Actor, Depends(require(Permission.safety_flag_read))],
        status_: Annotated[SafetyFlagStatus | None, Query(alias="status")] = None,
    ) -> list[SafetyFlagRead]:
        async with runtime_of(request).unit_of_work() as uow:
            flags = await service.safety_flags(uow, actor, patient_id, status_, check_patient)
        return [SafetyFlagRead.model_validate(f, from_attributes=True) for f in flags]

    @router.post(
        "/safety-flags/{flag_id}/acknowledge",
        response_model=SafetyFlagRead,
        summary="A clinician acknowledges a safety flag with a note",
    )
    async def acknowledge_safety_flag(
        patient_id: uuid.UUID,
        flag_id: uuid.UUID,
        body: Acknowledgement,
        request: Request,
        actor: Annotated[Actor, Depends(require(Permission.safety_flag_acknowledge))],
    ) -> SafetyFlagRead:
        async with runtime_of(request).unit_of_work() as uow:
            flag = await service.acknowledge_safety_flag(uow, actor, patient_id, flag_id, body.note, events)
        return SafetyFlagRead.model_validate(flag, from_attributes=True)

    return router
