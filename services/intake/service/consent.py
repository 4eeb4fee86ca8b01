"""Consent: versioned documents, witnessed signatures, withdrawals."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from services.intake.domain import (
    ConsentDocumentDraft,
    ConsentSignature,
    ConsentWithdrawal,
    check_signature_date,
)
from services.intake.models import Consent, ConsentDocument
from services.intake.service.patients import patient_or_404
from shared.audit import record_access
from shared.auth.guard import Actor
from shared.bus.tables import utcnow
from shared.db.unit_of_work import UnitOfWork
from shared.errors import Conflict, RecordNotFound
from shared.events.intake import (
    ConsentSigned,
    ConsentWithdrawn,
)


async def publish_consent_document(uow: UnitOfWork, actor: Actor, draft: ConsentDocumentDraft) -> ConsentDocument:
    document = ConsentDocument(**draft.model_dump(), created_at=utcnow(), created_by=actor.sub)
    uow.session.add(document)
    try:
        await uow.commit()
    except IntegrityError:
        raise Conflict(f"consent document version {draft.version} exists; a new text needs a new version") from None
    return document


async def consent_documents(uow: UnitOfWork) -> Sequence[ConsentDocument]:
    return (await uow.session.exec(select(ConsentDocument).order_by(col(ConsentDocument.effective_date)))).all()


async def consent_document(uow: UnitOfWork, document_id: int) -> ConsentDocument:
    document = await uow.session.get(ConsentDocument, document_id)
    if document is None:
        raise RecordNotFound("consent document")
    return document


async def sign_consent(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, signature: ConsentSignature) -> Consent:
    patient = await patient_or_404(uow, patient_id)
    if not patient.active:
        raise Conflict("the patient is deactivated")
    document = await uow.session.get(ConsentDocument, signature.document_id)
    if document is None:
        raise RecordNotFound("consent document")
    now = utcnow()
    signed_at = signature.signed_at or now
    try:
        check_signature_date(signed_at, document.effective_date, now)
    except ValueError as exc:
        raise Conflict(str(exc)) from None
    consent = Consent(
        patient_id=patient.id,
        document_id=document.id or 0,
        document_version=document.version,
        signed_at=signed_at,
        witnessed_by=signature.witnessed_by,
        informed_off_label_use=signature.informed_off_label_use,
        informed_adverse_reactions=signature.informed_adverse_reactions,
        informed_no_long_term_data=signature.informed_no_long_term_data,
        informed_expected_cost=signature.informed_expected_cost,
        expected_cost_note=signature.expected_cost_note,
        recorded_by=actor.sub,
    )
    uow.session.add(consent)
    await uow.publish(
        ConsentSigned(
            patient_id=patient.id, consent_id=consent.id, document_version=document.version, signed_at=signed_at
        )
    )
    record_access(uow, actor, "consent.sign", patient.id, f"patients/{patient.id}/consents/{consent.id}")
    await uow.commit()
    return consent


async def withdraw_consent(
    uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, consent_id: uuid.UUID, withdrawal: ConsentWithdrawal
) -> Consent:
    consent = await uow.session.get(Consent, consent_id)
    if consent is None or consent.patient_id != patient_id:
        raise RecordNotFound("consent")
    if consent.withdrawn_at is not None:
        raise Conflict("this consent was already withdrawn")
    now = utcnow()
    withdrawn_at = withdrawal.withdrawn_at or now
    if withdrawn_at > now or withdrawn_at < consent.signed_at:
        raise Conflict("withdrawn_at must lie between the signature and now")
    consent.withdrawn_at = withdrawn_at
    consent.withdrawal_reason = withdrawal.reason
    consent.withdrawn_by = actor.sub
    uow.session.add(consent)
    await uow.publish(ConsentWithdrawn(patient_id=patient_id, consent_id=consent.id, withdrawn_at=withdrawn_at))
    record_access(uow, actor, "consent.withdraw", patient_id, f"patients/{patient_id}/consents/{consent.id}")
    await uow.commit()
    return consent


async def patient_consents(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID) -> list[Consent]:
    await patient_or_404(uow, patient_id)
    rows = await uow.session.exec(
        select(Consent).where(Consent.patient_id == patient_id).order_by(col(Consent.signed_at).desc())
    )
    record_access(uow, actor, "consent.read", patient_id, f"patients/{patient_id}/consents")
    await uow.commit()
    return list(rows.all())


def is_consented(consents: Sequence[Consent]) -> bool:
    """Consented: at least one signed consent not withdrawn. A withdrawal shows the patient as not consented."""
    return any(c.withdrawn_at is None for c in consents)


async def consent_status(uow: UnitOfWork, patient_id: uuid.UUID) -> bool:
    return (await consent_statuses(uow, [patient_id]))[patient_id]


async def consent_statuses(uow: UnitOfWork, patient_ids: list[uuid.UUID]) -> dict[uuid.UUID, bool]:
    """Whether each patient is consented now, in one query for a page of patients."""
    rows = await uow.session.exec(select(Consent).where(col(Consent.patient_id).in_(patient_ids)))
    by_patient: dict[uuid.UUID, list[Consent]] = {patient_id: [] for patient_id in patient_ids}
    for consent in rows.all():
        by_patient[consent.patient_id].append(consent)
    return {patient_id: is_consented(consents) for patient_id, consents in by_patient.items()}
