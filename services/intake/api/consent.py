"""Consent: the site's versioned consent documents, signatures and withdrawals."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request, status
from pydantic import BaseModel

from services.intake.domain import ConsentDocumentDraft, ConsentSignature, ConsentWithdrawal
from services.intake.service import consent as service
from shared.app import runtime_of
from shared.auth.guard import Actor, require
from shared.auth.permissions import Permission
from shared.instants import MAX_ROW_ID

router = APIRouter(tags=["consent"])


class ConsentDocumentRead(BaseModel):
    id: int
    version: str
    title: str
    text: str
    effective_date: date
    created_at: datetime


class ConsentRead(BaseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    document_id: int
    document_version: str
    signed_at: datetime
    witnessed_by: str
    informed_off_label_use: bool
    informed_adverse_reactions: bool
    informed_no_long_term_data: bool
    informed_expected_cost: bool
    expected_cost_note: str | None
    withdrawn_at: datetime | None
    withdrawal_reason: str | None
    status: Literal["signed", "withdrawn"]

    @classmethod
    def of(cls, consent: object) -> ConsentRead:
        data = {name: getattr(consent, name) for name in cls.model_fields if name != "status"}
        return cls(**data, status="withdrawn" if data["withdrawn_at"] else "signed")


class PatientConsents(BaseModel):
    consented: bool
    consents: list[ConsentRead]


@router.post(
    "/consent-documents",
    status_code=status.HTTP_201_CREATED,
    response_model=ConsentDocumentRead,
    summary="Publish a new version of the site's consent document",
)
async def publish_consent_document(
    body: ConsentDocumentDraft,
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.consent_document_manage))],
) -> ConsentDocumentRead:
    async with runtime_of(request).unit_of_work() as uow:
        document = await service.publish_consent_document(uow, actor, body)
    return ConsentDocumentRead.model_validate(document, from_attributes=True)


@router.get("/consent-documents", response_model=list[ConsentDocumentRead], summary="Every consent document version")
async def list_consent_documents(
    request: Request, actor: Annotated[Actor, Depends(require(Permission.consent_document_read))]
) -> list[ConsentDocumentRead]:
    async with runtime_of(request).unit_of_work() as uow:
        documents = await service.consent_documents(uow)
    return [ConsentDocumentRead.model_validate(d, from_attributes=True) for d in documents]


@router.get("/consent-documents/{document_id}", response_model=ConsentDocumentRead, summary="One consent document")
async def get_consent_document(
    document_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)],
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.consent_document_read))],
) -> ConsentDocumentRead:
    async with runtime_of(request).unit_of_work() as uow:
        document = await service.consent_document(uow, document_id)
    return ConsentDocumentRead.model_validate(document, from_attributes=True)


@router.post(
    "/patients/{patient_id}/consents",
    status_code=status.HTTP_201_CREATED,
    response_model=ConsentRead,
    summary="Record a signed, witnessed informed consent",
)
async def sign_consent(
    patient_id: uuid.UUID,
    body: ConsentSignature,
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.consent_record))],
) -> ConsentRead:
    async with runtime_of(request).unit_of_work() as uow:
        consent = await service.sign_consent(uow, actor, patient_id, body)
    return ConsentRead.of(consent)


@router.get("/patients/{patient_id}/consents", response_model=PatientConsents, summary="A patient's consents")
async def patient_consents(
    patient_id: uuid.UUID, request: Request, actor: Annotated[Actor, Depends(require(Permission.consent_read))]
) -> PatientConsents:
    async with runtime_of(request).unit_of_work() as uow:
        consents = await service.patient_consents(uow, actor, patient_id)
    return PatientConsents(consented=service.is_consented(consents), consents=[ConsentRead.of(c) for c in consents])


@router.post(
    "/patients/{patient_id}/consents/{consent_id}/withdraw",
    response_model=ConsentRead,
    summary="Record the withdrawal of a consent",
)
async def withdraw_consent(
    patient_id: uuid.UUID,
    consent_id: uuid.UUID,
    body: ConsentWithdrawal,
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.consent_withdraw))],
) -> ConsentRead:
    async with runtime_of(request).unit_of_work() as uow:
        consent = await service.withdraw_consent(uow, actor, patient_id, consent_id, body)
    return ConsentRead.of(consent)
