"""A patient's prior-treatment history: antidepressant trials, psychotherapy, ECT, TMS and augmentation, the
evidence a payer asks for before it authorises treatment."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from services.intake.prior_treatment import PriorTreatment
from services.intake.service import prior_treatments as service
from shared.app import runtime_of
from shared.auth.guard import Actor, require
from shared.auth.permissions import Permission
from shared.prior_treatment import PriorTreatmentKind

_KINDS = [kind.value for kind in PriorTreatmentKind]
_TAG_ERRORS = frozenset({"union_tag_invalid", "union_tag_not_found"})


class _UntaggedErrors(APIRoute):
    """Pydantic puts the tag of a tagged union in an error's location (``/body/antidepressant_trial/drug``), which
    is not a pointer into the request; this drops it (``/body/drug``). A missing or unknown ``kind`` is pointed at
    ``/body/kind``, with a message that lists the kinds and does not echo what was sent."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def untagged(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                raise RequestValidationError([_untag(e) for e in exc.errors()], body=exc.body) from None

        return untagged


def _untag(error: Any) -> Any:
    loc = tuple(error["loc"])
    if len(loc) > 1 and loc[0] == "body" and loc[1] in _KINDS:
        return {**error, "loc": ("body", *loc[2:])}
    if loc == ("body",) and error["type"] in _TAG_ERRORS:
        expected = ", ".join(f"'{kind}'" for kind in _KINDS)
        return {**error, "loc": ("body", "kind"), "msg": f"Input should be {expected}"}
    return error


router = APIRouter(
    prefix="/patients/{patient_id}/prior-treatments", tags=["prior treatment"], route_class=_UntaggedErrors
)


class PriorTreatmentRead(BaseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    treatment: PriorTreatment
    adequate: bool | None = Field(
        description="an antidepressant trial at or above its minimum effective dose for at least 6 weeks; null for "
        "other kinds and for a drug whose minimum dose is not on file"
    )
    summary: str = Field(description="the treatment in words, as a payer reads it")
    recorded_at: datetime
    recorded_by: str

    @classmethod
    def of(cls, recorded: service.RecordedTreatment) -> PriorTreatmentRead:
        record, treatment = recorded.record, recorded.treatment
        return cls(
            id=record.id,
            patient_id=record.patient_id,
            treatment=treatment,
            adequate=treatment.adequate,
            summary=treatment.summary(),
            recorded_at=record.recorded_at,
            recorded_by=record.recorded_by,
        )


class PriorTreatmentHistory(BaseModel):
    treatment_resistant: bool = Field(
        description="no adequate response to at least 2 different antidepressants, each of adequate dose and "
        "duration, in the current episode (the esketamine label's definition)"
    )
    treatments: list[PriorTreatmentRead]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=PriorTreatmentRead,
    summary="Record a treatment the patient tried before: an antidepressant trial, psychotherapy, ECT, TMS or an "
    "augmentation",
)
async def record_prior_treatment(
    patient_id: uuid.UUID,
    body: PriorTreatment,
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.prior_treatment_record))],
) -> PriorTreatmentRead:
    async with runtime_of(request).unit_of_work() as uow:
        recorded = await service.record_prior_treatment(uow, actor, patient_id, body)
    return PriorTreatmentRead.of(recorded)


@router.get(
    "",
    response_model=PriorTreatmentHistory,
    summary="The patient's prior treatments, oldest first, and whether they meet the definition of "
    "treatment-resistant depression",
)
async def prior_treatment_history(
    patient_id: uuid.UUID,
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.prior_treatment_read))],
) -> PriorTreatmentHistory:
    async with runtime_of(request).unit_of_work() as uow:
        history = await service.prior_treatment_history(uow, actor, patient_id)
    return PriorTreatmentHistory(
        treatment_resistant=history.treatment_resistant,
        treatments=[PriorTreatmentRead.of(r) for r in history.treatments],
    )
