"""FHIR R4 read API of dosing sessions: Encounter, MedicationAdministration, vital-sign Observations and
AdverseEvents as application/fhir+json, and the CodeSystems of sessions' own codes (by the same permission; they
hold no patient data and are not audited).

Read an Encounter by the session's id; search the others by encounter (the session) and/or patient. Each search
also takes R4's own name for these parameters: ``context`` (MedicationAdministration) and ``subject``. Writes stay
on sessions' own API. An unknown or malformed id is a 404 with a FHIR OperationOutcome; a search that matches
nothing is an empty Bundle; a search with neither criterion is a 400 OperationOutcome.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, status

from services.sessions.fhir import CODE_SYSTEMS, encounter_resource, session_resources
from services.sessions.service import fhir as service
from shared.app import runtime_of
from shared.auth.guard import Actor, require
from shared.auth.permissions import Permission
from shared.concurrency import etag
from shared.errors import RecordNotFound
from shared.fhir import FHIR_JSON, FhirJSONResponse, code_systems_matching, operation_outcome, searchset

router = APIRouter(prefix="/fhir", tags=["FHIR R4"])

Reader = Annotated[Actor, Depends(require(Permission.session_record_read))]
_REFERENCE = "a bare id, or a relative reference"
EncounterParam = Annotated[
    str | None, Query(max_length=200, description=f"the dosing session: {_REFERENCE} Encounter/{{id}}")
]
PatientParam = Annotated[str | None, Query(max_length=200, description=f"the patient: {_REFERENCE} Patient/{{id}}")]
SubjectParam = Annotated[str | None, Query(max_length=200, description="R4's name for patient: Patient/{id}")]
ContextParam = Annotated[str | None, Query(max_length=200, description="R4's name for encounter: Encounter/{id}")]
UrlParam = Annotated[
    str | None, Query(max_length=300, description="a CodeSystem's canonical URL, optionally with |version")
]

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    status.HTTP_404_NOT_FOUND: {
        "description": "No such resource at this site (a FHIR OperationOutcome)",
        "content": {FHIR_JSON: {}},
    }
}
_BAD_SEARCH: dict[int | str, dict[str, Any]] = {
    status.HTTP_400_BAD_REQUEST: {
        "description": "Neither an encounter nor a patient to search by (a FHIR OperationOutcome)",
        "content": {FHIR_JSON: {}},
    }
}
NO_MATCH: Literal[False] = False


def _id(value: str) -> uuid.UUID | None:
    """Our ids are UUIDs; any other FHIR id names nothing here."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _criterion(resource_type: str, *values: str | None) -> uuid.UUID | Literal[False] | None:
    """One search criterion given under one or more names: None when not given, NO_MATCH when what was given
    names nothing here or names two different things (FHIR ANDs repeated criteria), else the id."""
    given = {value.removeprefix(f"{resource_type}/") for value in values if value is not None}
    if not given:
        return None
    ids = {_id(value) for value in given}
    if len(ids) != 1:
        return NO_MATCH
    found = ids.pop()
    return NO_MATCH if found is None else found


async def _search(
    request: Request,
    actor: Actor,
    resource_type: str,
    encounter: tuple[str | None, ...],
    patient: tuple[str | None, ...],
) -> FhirJSONResponse:
    session_id, patient_id = _criterion("Encounter", *encounter), _criterion("Patient", *patient)
    if session_id is None and patient_id is None:
        return FhirJSONResponse(
            operation_outcome("invalid", f"search {resource_type} by encounter or patient"),
            status_code=status.HTTP_400_BAD_REQUEST,
        )
    runtime = runtime_of(request)
    resources: list[dict[str, Any]] = []
    if session_id is not NO_MATCH and patient_id is not NO_MATCH:
        async with runtime.unit_of_work() as uow:
            found = await service.search_sessions(
                uow, actor, resource_type, session_id=session_id, patient_id=patient_id
            )
        for loaded in found:
            resources.extend(
                session_resources(
                    resource_type, loaded.chart, loaded.course.course, runtime.own_site, loaded.row.version
                )
            )
    base = f"{str(request.base_url).rstrip('/')}{router.prefix}"
    return FhirJSONResponse(searchset(resources, base=base, self_url=str(request.url)))


@router.get(
    "/Encounter/{session_id}",
    response_class=FhirJSONResponse,
    responses=_NOT_FOUND,
    summary="Read a dosing session as an Encounter (FHIR R4), with its ETag",
)
async def read_encounter(session_id: str, request: Request, actor: Reader) -> FhirJSONResponse:
    runtime = runtime_of(request)
    if (key := _id(session_id)) is None:
        return _not_found("encounter")
    async with runtime.unit_of_work() as uow:
        try:
            loaded = await service.read_encounter(uow, actor, key)
        except RecordNotFound:
            return _not_found("encounter")
    return FhirJSONResponse(
        encounter_resource(loaded.chart, loaded.course.course, runtime.own_site, loaded.row.version),
        headers={"ETag": etag(loaded.row.version)},
    )


def _not_found(kind: str) -> FhirJSONResponse:
    return FhirJSONResponse(
        operation_outcome("not-found", f"no such {kind} at this site"), status_code=status.HTTP_404_NOT_FOUND
    )


@router.get(
    "/Encounter",
    response_class=FhirJSONResponse,
    responses=_BAD_SEARCH,
    summary="Search a patient's dosing sessions: a searchset Bundle of Encounters (FHIR R4)",
)
async def search_encounters(
    request: Request, actor: Reader, patient: PatientParam = None, subject: SubjectParam = None
) -> FhirJSONResponse:
    return await _search(request, actor, "Encounter", (), (patient, subject))


@router.get(
    "/MedicationAdministration",
    response_class=FhirJSONResponse,
    responses=_BAD_SEARCH,
    summary="Search doses by session or patient: a searchset Bundle of MedicationAdministrations (FHIR R4)",
)
async def search_medication_administrations(
    request: Request,
    actor: Reader,
    encounter: EncounterParam = None,
    context: ContextParam = None,
    patient: PatientParam = None,
    subject: SubjectParam = None,
) -> FhirJSONResponse:
    return await _search(request, actor, "MedicationAdministration", (encounter, context), (patient, subject))


@router.get(
    "/Observation",
    response_class=FhirJSONResponse,
    responses=_BAD_SEARCH,
    summary="Search vital signs by session or patient: a searchset Bundle of Observations (FHIR R4)",
)
async def search_observations(
    request: Request,
    actor: Reader,
    encounter: EncounterParam = None,
    patient: PatientParam = None,
    subject: SubjectParam = None,
) -> FhirJSONResponse:
    return await _search(request, actor, "Observation", (encounter,), (patient, subject))


@router.get(
    "/AdverseEvent",
    response_class=FhirJSONResponse,
    responses=_BAD_SEARCH,
    summary="Search adverse events by session or patient: a searchset Bundle of AdverseEvents (FHIR R4)",
)
async def search_adverse_events(
    request: Request,
    actor: Reader,
    encounter: EncounterParam = None,
    patient: PatientParam = None,
    subject: SubjectParam = None,
) -> FhirJSONResponse:
    return await _search(request, actor, "AdverseEvent", (encounter,), (patient, subject))


@router.get(
    "/CodeSystem",
    response_class=FhirJSONResponse,
    summary="Search the CodeSystems of sessions' own codes: a searchset Bundle of CodeSystems (FHIR R4)",
)
async def search_code_systems(request: Request, actor: Reader, url: UrlParam = None) -> FhirJSONResponse:
    base = f"{str(request.base_url).rstrip('/')}{router.prefix}"
    found = code_systems_matching(CODE_SYSTEMS.values(), url)
    return FhirJSONResponse(searchset(found, base=base, self_url=str(request.url)))


@router.get(
    "/CodeSystem/{code_system_id}",
    response_class=FhirJSONResponse,
    responses=_NOT_FOUND,
    summary="Read a CodeSystem of sessions' own codes (FHIR R4)",
)
async def read_code_system(code_system_id: str, actor: Reader) -> FhirJSONResponse:
    if (found := CODE_SYSTEMS.get(code_system_id)) is None:
        return _not_found("code system")
    return FhirJSONResponse(found)
