"""Site role routes for clinicians and therapists: a patient's trajectory (plain JSON and a FHIR Observation
series, for a chart) and the follow-ups due. Every read of a patient's outcomes is audited."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status

from services.outcomes.api.deps import DefinitionDep, OutcomesReader, SiteToday, SiteZone
from services.outcomes.fhir.trajectory import CODE_SYSTEMS, trajectory_observations
from services.outcomes.service import trajectories
from services.outcomes.service.trajectories import FollowUpToAsk, PatientOutcomes
from shared.app import UnitOfWorkDep
from shared.errors import RecordNotFound
from shared.fhir import FHIR_JSON, FhirJSONResponse, code_systems_matching, operation_outcome, searchset

router = APIRouter(tags=["patient outcomes"])
fhir_router = APIRouter(prefix="/fhir", tags=["FHIR R4"])

_FHIR_ERRORS: dict[int | str, dict[str, Any]] = {
    status.HTTP_400_BAD_REQUEST: {
        "description": "No patient to search by (OperationOutcome)",
        "content": {FHIR_JSON: {}},
    }
}


@router.get(
    "/patients/{patient_id}/outcomes",
    summary="A patient's trajectory: every score, each course judged (response, remission, time to response), "
    "its doses, adverse events, alerts, flags, dropout, wait and cost, its follow-ups, and stored results",
)
async def read_patient_outcomes(
    patient_id: uuid.UUID,
    uow: UnitOfWorkDep,
    actor: OutcomesReader,
    definition: DefinitionDep,
    zone: SiteZone,
    today: SiteToday,
) -> PatientOutcomes:
    return await trajectories.patient_outcomes(uow, actor, patient_id, definition, zone, today)


@router.get("/followups/due", summary="Follow-ups whose window is open with a score missing, soonest to close first")
async def list_follow_ups_due(
    uow: UnitOfWorkDep, actor: OutcomesReader, definition: DefinitionDep, zone: SiteZone, today: SiteToday
) -> list[FollowUpToAsk]:
    return await trajectories.follow_ups_due(uow, actor, definition, zone, today)


@fhir_router.get(
    "/Observation",
    response_class=FhirJSONResponse,
    responses=_FHIR_ERRORS,
    summary="A patient's trajectory as a FHIR Observation series (a searchset Bundle)",
)
async def search_trajectory_observations(
    request: Request,
    uow: UnitOfWorkDep,
    actor: OutcomesReader,
    definition: DefinitionDep,
    zone: SiteZone,
    today: SiteToday,
    patient: Annotated[str | None, Query(max_length=200, description="Patient/{id} or a bare id")] = None,
    subject: Annotated[str | None, Query(max_length=200, description="R4's name for patient")] = None,
) -> FhirJSONResponse:
    given = patient or subject
    if given is None:
        return FhirJSONResponse(
            operation_outcome("invalid", "search by patient (or subject): Patient/{id}"),
            status_code=status.HTTP_400_BAD_REQUEST,
        )
    base = str(request.url_for("search_trajectory_observations")).removesuffix("/Observation")
    try:
        patient_id = uuid.UUID(given.removeprefix("Patient/"))
    except ValueError:
        return FhirJSONResponse(searchset([], base=base, self_url=str(request.url)))
    try:
        outcomes = await trajectories.patient_outcomes(uow, actor, patient_id, definition, zone, today)
    except RecordNotFound:
        return FhirJSONResponse(searchset([], base=base, self_url=str(request.url)))
    return FhirJSONResponse(
        searchset(trajectory_observations(list(outcomes.courses)), base=base, self_url=str(request.url))
    )


@fhir_router.get(
    "/CodeSystem", response_class=FhirJSONResponse, summary="Outcomes' own CodeSystems (a searchset Bundle)"
)
async def search_code_systems(
    request: Request,
    actor: OutcomesReader,
    url: Annotated[str | None, Query(max_length=300, description="a canonical URL, optionally with |version")] = None,
) -> FhirJSONResponse:
    base = str(request.url_for("search_code_systems")).removesuffix("/CodeSystem")
    return FhirJSONResponse(searchset(code_systems_matching(CODE_SYSTEMS, url), base=base, self_url=str(request.url)))
