"""The reads behind the FHIR API, each with its own audit entry ("fhir.*"), so the log tells a FHIR client's
read from a console's."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlmodel import col, select

from services.intake.models import Assessment, Consent, ConsentDocument, Patient
from services.intake.service.patients import patient_or_404
from shared.audit import record_access
from shared.auth.guard import Actor
from shared.db.unit_of_work import UnitOfWork
from shared.errors import RecordNotFound

ConsentWithDocument = tuple[Consent, ConsentDocument | None]


async def read_patient(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID) -> Patient:
    patient = await patient_or_404(uow, patient_id)
    record_access(uow, actor, "fhir.patient.read", patient.id, f"fhir/Patient/{patient.id}")
    await uow.commit()
    return patient


async def read_observation(uow: UnitOfWork, actor: Actor, observation_id: uuid.UUID) -> Assessment:
    assessment = await uow.session.get(Assessment, observation_id)
    if assessment is None:
        raise RecordNotFound("observation")
    record_access(uow, actor, "fhir.observation.read", assessment.patient_id, f"fhir/Observation/{assessment.id}")
    await uow.commit()
    return assessment


async def search_observations(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID) -> Sequence[Assessment]:
    """A patient's measures, oldest first. A FHIR search that matches nothing is an empty Bundle, not an error,
    so an unknown patient gets one too (and, as no record was read, no audit entry)."""
    if await uow.session.get(Patient, patient_id) is None:
        return []
    rows = await uow.session.exec(
        select(Assessment)
        .where(Assessment.patient_id == patient_id)
        .order_by(col(Assessment.administered_at), col(Assessment.id))
    )
    record_access(uow, actor, "fhir.observation.search", patient_id, f"fhir/Observation?patient={patient_id}")
    await uow.commit()
    return rows.all()


async def read_consent(uow: UnitOfWork, actor: Actor, consent_id: uuid.UUID) -> ConsentWithDocument:
    consent = await uow.session.get(Consent, consent_id)
    if consent is None:
        raise RecordNotFound("consent")
    document = await uow.session.get(ConsentDocument, consent.document_id)
    record_access(uow, actor, "fhir.consent.read", consent.patient_id, f"fhir/Consent/{consent.id}")
    await uow.commit()
    return consent, document


async def search_consents(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID) -> list[ConsentWithDocument]:
    """A patient's consents, newest signature first, each with the document it was signed under; for an unknown
    patient an empty list, as for search_observations."""
    if await uow.session.get(Patient, patient_id) is None:
        return []
    rows = await uow.session.exec(
        select(Consent, ConsentDocument)
        .join(ConsentDocument, col(ConsentDocument.id) == col(Consent.document_id), isouter=True)
        .where(Consent.patient_id == patient_id)
        .order_by(col(Consent.signed_at).desc(), col(Consent.id))
    )
    record_access(uow, actor, "fhir.consent.search", patient_id, f"fhir/Consent?patient={patient_id}")
    await uow.commit()
    return [(consent, document) for consent, document in rows.all()]
