"""FHIR R4 read API: patients, measures (Observation) and consents as application/fhir+json, and the
CodeSystems of intake's own codes.

Reads and searches by patient only; writes stay on intake's own API. An unknown or malformed id is a 404 with
a FHIR OperationOutcome, which tells no more than the shared 404 does. The CodeSystems define the kapnet codes
of measures, so reading them takes the permission to read measures; they hold no patient data and are not audited.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status

from services.intake.fhir import CODE_SYSTEMS, consent_resource, observation_resource, patient_resource
from services.intake.service import fhir as service
from shared.app import runtime_of
from shared.auth.guard import Actor, require
from shared.auth.permissions import Permission
from shared.concurrency import etag
from shared.errors import RecordNotFound
from shared.fhir import FHIR_JSON, FhirJSONResponse, code_systems_matching, operation_outcome, searchset

router = APIRouter(prefix="/fhir", tags=["FHIR R4"])


_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    status.HTTP_404_NOT_FOUND: {
        "description": "No such resource at this site (a FHIR OperationOutcome)",
        "content": {FHIR_JSON: {}},
    }
}
PatientParam = Annotated[str, Query(max_length=200, description="the patient's id, or a reference Patient/{id}")]
UrlParam = Annotated[
    str | None, Query(max_length=300, description="a CodeSystem's canonical URL, optionally with |version")
]


def _not_found(kind: str) -> FhirJSONResponse:
    return FhirJSONResponse(
        operation_outcome("not-found", f"no such {kind} at this site"), status_code=status.HTTP_404_NOT_FOUND
    )


def _id(value: str) -> uuid.UUID | None:
    """Our ids are UUIDs; any other FHIR id names nothing here."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _patient_id(patient: str) -> uuid.UUID | None:
    """The `patient` search parameter: a bare id or a relative reference Patient/{id}."""
    return _id(patient.removeprefix("Patient/"))


def _bundle(request: Request, resources: list[dict[str, Any]]) -> FhirJSONResponse:
    base = f"{str(request.base_url).rstrip('/')}{router.prefix}"
    return FhirJSONResponse(searchset(resources, base=base, self_url=str(request.url)))


@router.get(
    "/Patient/{patient_id}",
    response_class=FhirJSONResponse,
    responses=_NOT_FOUND,
    summary="Read a Patient (FHIR R4), with its ETag",
)
async def read_patient(
    patient_id: str, request: Request, actor: Annotated[Actor, Depends(require(Permission.patient_read))]
) -> FhirJSONResponse:
    runtime = runtime_of(request)
    if (key := _id(patient_id)) is None:
        return _not_found("patient")
    async with runtime.unit_of_work() as uow:
        try:
            patient = await service.read_patient(uow, actor, key)
        except RecordNotFound:
            return _not_found("patient")
    return FhirJSONResponse(patient_resource(patient, runtime.own_site), headers={"ETag": etag(patient.version)})


@router.get(
    "/Observation",
    response_class=FhirJSONResponse,
    summary="Search a patient's measures: a searchset Bundle of Observations (FHIR R4)",
)
async def search_observations(
    request: Request, actor: Annotated[Actor, Depends(require(Permission.assessment_read))], patient: PatientParam
) -> FhirJSONResponse:
    if (key := _patient_id(patient)) is None:
        return _bundle(request, [])
    async with runtime_of(request).unit_of_work() as uow:
        assessments = await service.search_observations(uow, actor, key)
    return _bundle(request, [observation_resource(a) for a in assessments])


@router.get(
    "/Observation/{observation_id}",
    response_class=FhirJSONResponse,
    responses=_NOT_FOUND,
    summary="Read one measure as an Observation (FHIR R4)",
)
async def read_observation(
    observation_id: str, request: Request, actor: Annotated[Actor, Depends(require(Permission.assessment_read))]
) -> FhirJSONResponse:
    if (key := _id(observation_id)) is None:
        return _not_found("observation")
    async with runtime_of(request).unit_of_work() as uow:
        try:
            assessment = await service.read_observation(uow, actor, key)
        except RecordNotFound:
            return _not_found("observation")
    return FhirJSONResponse(observation_resource(assessment))


@router.get(
    "/Consent",
    response_class=FhirJSONResponse,
    summary="Search a patient's consents: a searchset Bundle of Consents (FHIR R4)",
)
async def search_consents(
    request: Request, actor: Annotated[Actor, Depends(require(Permission.consent_read))], patient: PatientParam
) -> FhirJSONResponse:
    if (key := _patient_id(patient)) is None:
        return _bundle(request, [])
    runtime = runtime_of(request)
    async with runtime.unit_of_work() as uow:
        consents = await service.search_consents(uow, actor, key)
    return _bundle(request, [consent_resource(c, d, runtime.own_site) for c, d in consents])


@router.get(
    "/Consent/{consent_id}",
    response_class=FhirJSONResponse,
    responses=_NOT_FOUND,
    summary="Read one Consent (FHIR R4)",
)
async def read_consent(
    consent_id: str, request: Request, actor: Annotated[Actor, Depends(require(Permission.consent_read))]
) -> FhirJSONResponse:
    if (key := _id(consent_id)) is None:
        return _not_found("consent")
    runtime = runtime_of(request)
    async with runtime.unit_of_work() as uow:
        try:
            consent, document = await service.read_consent(uow, actor, key)
        except RecordNotFound:
            return _not_found("consent")
    return FhirJSONResponse(consent_resource(consent, document, runtime.own_site))


@router.get(
    "/CodeSystem",
    response_class=FhirJSONResponse,
    summary="Search the CodeSystems of intake's own codes: a searchset Bundle of CodeSystems (FHIR R4)",
)
async def search_code_systems(
    request: Request, actor: Annotated[Actor, Depends(require(Permission.assessment_read))], url: UrlParam = None
) -> FhirJSONResponse:
    return _bundle(request, code_systems_matching(CODE_SYSTEMS.values(), url))


@router.get(
    "/CodeSystem/{code_system_id}",
    response_class=FhirJSONResponse,
    responses=_NOT_FOUND,
    summary="Read a CodeSystem of intake's own codes (FHIR R4)",
)
async def read_code_system(
    code_system_id: str, actor: Annotated[Actor, Depends(require(Permission.assessment_read))]
) -> FhirJSONResponse:
    if (found := CODE_SYSTEMS.get(code_system_id)) is None:
        return _not_found("code system")
    return FhirJSONResponse(found)
