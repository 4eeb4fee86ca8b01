"""FHIR R4 read API of billing: the patient's Coverage, Claims (claims to payers, use claim, and issued Good Faith
Estimates, use predetermination) and ExplanationOfBenefits (adjudicated claims) as application/fhir+json.

Ids: a Coverage's id is the patient's id (one coverage on file per patient); a claim's Claim and its
ExplanationOfBenefit have the claim's id; an estimate's Claim has the estimate's id. Claims and estimates both have
random (version 4) UUIDs, so one route, GET /fhir/Claim/{id}, looks up a claim by the id and, when there is none,
an issued estimate: an id never names both. An estimate that is owed but not yet issued has no Claim yet.

Reading takes billing.read, as billing's own reads do; each read and each search that finds the patient writes an
audit entry (fhir.coverage.read, fhir.claim.search, ...). A search takes ``patient`` (a bare id or Patient/{id};
Coverage also R4's ``beneficiary``) and, for Claim, optionally ``use``; with no patient it is a 400
OperationOutcome, and one that matches nothing (an unknown patient included) is an empty Bundle without an audit
entry, as no record was read. An unknown or malformed id is a 404 OperationOutcome. Writes stay on billing's API.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, status
from sqlmodel import col, select

from services.billing.api.deps import Reader
from services.billing.domain.claims import Claim, ClaimStatus
from services.billing.domain.coverage import CoverageOnFile
from services.billing.domain.estimates import GoodFaithEstimate
from services.billing.fhir import (
    claim_resource,
    coverage_resource,
    explanation_of_benefit_resource,
    predetermination_resource,
)
from services.billing.models import BillingPatient, ClaimRow, EstimateRow
from services.billing.service import store
from shared.app import UnitOfWorkDep
from shared.audit import record_access
from shared.auth.guard import Actor
from shared.concurrency import etag
from shared.db.unit_of_work import UnitOfWork
from shared.fhir import FHIR_JSON, FhirJSONResponse, operation_outcome, searchset

router = APIRouter(prefix="/fhir", tags=["FHIR R4"])

_REFERENCE = "a bare id, or a relative reference Patient/{id}"
PatientParam = Annotated[str | None, Query(max_length=200, description=f"the patient: {_REFERENCE}")]
BeneficiaryParam = Annotated[str | None, Query(max_length=200, description="R4's name for patient: Patient/{id}")]
UseParam = Annotated[
    str | None, Query(max_length=40, description="claim (claims to payers) or predetermination (estimates)")
]

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    status.HTTP_404_NOT_FOUND: {
        "description": "No such resource at this site (a FHIR OperationOutcome)",
        "content": {FHIR_JSON: {}},
    }
}
_BAD_SEARCH: dict[int | str, dict[str, Any]] = {
    status.HTTP_400_BAD_REQUEST: {
        "description": "No patient to search by (a FHIR OperationOutcome)",
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


def _patient(*values: str | None) -> uuid.UUID | Literal[False] | None:
    """The patient searched for, given under one or more names: None when not given, NO_MATCH when what was given
    names no patient here or names two different ones (FHIR ANDs repeated criteria), else the id."""
    given = {value.removeprefix("Patient/") for value in values if value is not None}
    if not given:
        return None
    ids = {_id(value) for value in given}
    found = ids.pop() if len(ids) == 1 else None
    return NO_MATCH if found is None else found


def _not_found(kind: str) -> FhirJSONResponse:
    return FhirJSONResponse(
        operation_outcome("not-found", f"no such {kind} at this site"), status_code=status.HTTP_404_NOT_FOUND
    )


def _no_patient(resource_type: str) -> FhirJSONResponse:
    return FhirJSONResponse(
        operation_outcome("invalid", f"search {resource_type} by patient"), status_code=status.HTTP_400_BAD_REQUEST
    )


def _bundle(request: Request, resources: list[dict[str, Any]]) -> FhirJSONResponse:
    base = f"{str(request.base_url).rstrip('/')}{router.prefix}"
    return FhirJSONResponse(searchset(resources, base=base, self_url=str(request.url)))


# --- the reads, each with its audit entry ---------------------------------------------------------------------


async def _on_file(uow: UnitOfWork, patient_id: uuid.UUID) -> CoverageOnFile | None:
    patient = await uow.session.get(BillingPatient, patient_id)
    return store.coverage_on_file(patient) if patient is not None else None


async def _coverage(uow: UnitOfWork, patient: BillingPatient) -> dict[str, Any]:
    on_file = store.coverage_on_file(patient)
    benefits = None if on_file.self_pay else await store.plan_benefits(uow, on_file.payer, on_file.plan)
    return coverage_resource(patient.patient_id, on_file, benefits, patient.updated_at)


@dataclass(frozen=True)
class _Found:
    """A Claim resource with when it was made (to order a search) and its version, if it has one (an ETag)."""

    resource: dict[str, Any]
    created: datetime
    version: int | None = None


def _from_claim(row: ClaimRow, on_file: CoverageOnFile | None) -> _Found:
    claim = Claim.model_validate(row.document)
    return _Found(claim_resource(claim, on_file, row.version), claim.created_at, row.version)


def _from_estimate(row: EstimateRow, on_file: CoverageOnFile | None) -> _Found | None:
    if row.document is None or row.issued_at is None:
        return None  # owed, not yet issued: nothing estimated yet
    estimate = GoodFaithEstimate.model_validate(row.document)
    return _Found(predetermination_resource(row.id, row.patient_id, estimate, row.issued_at, on_file), row.issued_at)


async def _read_claim(uow: UnitOfWork, actor: Actor, key: uuid.UUID) -> _Found | None:
    found: _Found | None = None
    patient_id: uuid.UUID | None = None
    if (row := await uow.session.get(ClaimRow, key)) is not None:
        patient_id = row.patient_id
        found = _from_claim(row, await _on_file(uow, row.patient_id))
    elif (estimate := await uow.session.get(EstimateRow, key)) is not None:
        patient_id = estimate.patient_id
        found = _from_estimate(estimate, await _on_file(uow, estimate.patient_id))
    if found is None:
        return None
    record_access(uow, actor, "fhir.claim.read", patient_id, f"fhir/Claim/{key}")
    await uow.commit()
    return found


async def _search_claims(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, use: str | None) -> list[_Found]:
    """A patient's claims and issued estimates, the earliest made first."""
    if (patient := await uow.session.get(BillingPatient, patient_id)) is None:
        return []
    on_file = store.coverage_on_file(patient)
    found: list[_Found] = []
    if use in (None, "claim"):
        rows = await uow.session.exec(select(ClaimRow).where(ClaimRow.patient_id == patient_id))
        found.extend(_from_claim(row, on_file) for row in rows.all())
    if use in (None, "predetermination"):
        estimates = await uow.session.exec(
            select(EstimateRow).where(EstimateRow.patient_id == patient_id, col(EstimateRow.issued_at).is_not(None))
        )
        found.extend(f for row in estimates.all() if (f := _from_estimate(row, on_file)) is not None)
    record_access(uow, actor, "fhir.claim.search", patient_id, f"fhir/Claim?patient={patient_id}")
    await uow.commit()
    return sorted(found, key=lambda f: (f.created, f.resource["id"]))


async def _adjudicated(uow: UnitOfWork, patient_id: uuid.UUID, rows: list[ClaimRow]) -> list[dict[str, Any]]:
    """The ExplanationOfBenefits of one patient's claims that the payer has decided."""
    on_file = await _on_file(uow, patient_id)
    claims = [Claim.model_validate(row.document) for row in rows]
    return [explanation_of_benefit_resource(c, on_file) for c in claims if c.adjudication is not None]


# --- Coverage ------------------------------------------------------------------------------------------------


@router.get(
    "/Coverage/{coverage_id}",
    response_class=FhirJSONResponse,
    responses=_NOT_FOUND,
    summary="Read a patient's coverage on file as a Coverage (FHIR R4); its id is the patient's id",
)
async def read_coverage(coverage_id: str, actor: Reader, uow: UnitOfWorkDep) -> FhirJSONResponse:
    key = _id(coverage_id)
    patient = await uow.session.get(BillingPatient, key) if key is not None else None
    if patient is None:
        return _not_found("coverage")
    resource = await _coverage(uow, patient)
    record_access(uow, actor, "fhir.coverage.read", patient.patient_id, f"fhir/Coverage/{patient.patient_id}")
    await uow.commit()
    return FhirJSONResponse(resource)


@router.get(
    "/Coverage",
    response_class=FhirJSONResponse,
    responses=_BAD_SEARCH,
    summary="Search a patient's coverage: a searchset Bundle of Coverages (FHIR R4)",
)
async def search_coverage(
    request: Request,
    actor: Reader,
    uow: UnitOfWorkDep,
    patient: PatientParam = None,
    beneficiary: BeneficiaryParam = None,
) -> FhirJSONResponse:
    if (key := _patient(patient, beneficiary)) is None:
        return _no_patient("Coverage")
    found = await uow.session.get(BillingPatient, key) if key is not NO_MATCH else None
    if found is None:
        return _bundle(request, [])
    resource = await _coverage(uow, found)
    record_access(uow, actor, "fhir.coverage.search", found.patient_id, f"fhir/Coverage?patient={found.patient_id}")
    await uow.commit()
    return _bundle(request, [resource])


# --- Claim ---------------------------------------------------------------------------------------------------


@router.get(
    "/Claim/{claim_id}",
    response_class=FhirJSONResponse,
    responses=_NOT_FOUND,
    summary="Read a claim (use claim, with its ETag) or an issued Good Faith Estimate (use predetermination)",
)
async def read_claim(claim_id: str, actor: Reader, uow: UnitOfWorkDep) -> FhirJSONResponse:
    found = await _read_claim(uow, actor, key) if (key := _id(claim_id)) is not None else None
    if found is None:
        return _not_found("claim")
    headers = {"ETag": etag(found.version)} if found.version is not None else None
    return FhirJSONResponse(found.resource, headers=headers)


@router.get(
    "/Claim",
    response_class=FhirJSONResponse,
    responses=_BAD_SEARCH,
    summary="Search a patient's claims and Good Faith Estimates: a searchset Bundle of Claims (FHIR R4)",
)
async def search_claims(
    request: Request, actor: Reader, uow: UnitOfWorkDep, patient: PatientParam = None, use: UseParam = None
) -> FhirJSONResponse:
    if (key := _patient(patient)) is None:
        return _no_patient("Claim")
    if key is NO_MATCH:
        return _bundle(request, [])
    found = await _search_claims(uow, actor, key, use)
    return _bundle(request, [f.resource for f in found])


# --- ExplanationOfBenefit ------------------------------------------------------------------------------------


@router.get(
    "/ExplanationOfBenefit/{claim_id}",
    response_class=FhirJSONResponse,
    responses=_NOT_FOUND,
    summary="Read the payer's decision on a claim as an ExplanationOfBenefit (FHIR R4); its id is the claim's id",
)
async def read_explanation_of_benefit(claim_id: str, actor: Reader, uow: UnitOfWorkDep) -> FhirJSONResponse:
    row = await uow.session.get(ClaimRow, key) if (key := _id(claim_id)) is not None else None
    resources = await _adjudicated(uow, row.patient_id, [row]) if row is not None else []
    if row is None or not resources:
        return _not_found("explanation of benefit")
    record_access(uow, actor, "fhir.explanationofbenefit.read", row.patient_id, f"fhir/ExplanationOfBenefit/{key}")
    await uow.commit()
    return FhirJSONResponse(resources[0])


@router.get(
    "/ExplanationOfBenefit",
    response_class=FhirJSONResponse,
    responses=_BAD_SEARCH,
    summary="Search a patient's adjudicated claims: a searchset Bundle of ExplanationOfBenefits (FHIR R4)",
)
async def search_explanations_of_benefit(
    request: Request, actor: Reader, uow: UnitOfWorkDep, patient: PatientParam = None
) -> FhirJSONResponse:
    if (key := _patient(patient)) is None:
        return _no_patient("ExplanationOfBenefit")
    if key is NO_MATCH or await uow.session.get(BillingPatient, key) is None:
        return _bundle(request, [])
    rows = await uow.session.exec(
        select(ClaimRow)
        .where(ClaimRow.patient_id == key, ClaimRow.status == ClaimStatus.adjudicated)
        .order_by(col(ClaimRow.created_at), col(ClaimRow.id))
    )
    resources = await _adjudicated(uow, key, list(rows.all()))
    record_access(uow, actor, "fhir.explanationofbenefit.search", key, f"fhir/ExplanationOfBenefit?patient={key}")
    await uow.commit()
    return _bundle(request, resources)
