"""Sessions learns eligibility and consent from intake's events, into its own read model."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import col, select

from services.sessions.domain.eligibility import ScreeningOutcome
from services.sessions.models import ConsentRecord, PatientSafetyFlag, PatientStatus
from services.sessions.service.courses import hold_open_courses
from shared.bus.consumer import Handler
from shared.bus.tables import utcnow
from shared.db.unit_of_work import UnitOfWork
from shared.events.envelope import CloudEvent
from shared.events.intake import (
    ConsentSigned,
    ConsentWithdrawn,
    MedicalReviewDecided,
    PatientDeactivated,
    PatientRegistered,
    PatientUpdated,
    SafetyFlagAcknowledged,
    SafetyFlagRaised,
    ScreeningCompleted,
)
from shared.events.registry import DomainEvent


async def _status(uow: UnitOfWork, patient_id: uuid.UUID) -> PatientStatus:
    status = await uow.session.get(PatientStatus, patient_id)
    if status is None:
        # Events of one patient arrive in order on one partition, but a consumer that starts late may meet a
        # patient's later events first only if the topic was truncated: start from what this event says.
        status = PatientStatus(patient_id=patient_id, updated_at=utcnow())
    return status


async def on_patient_registered(uow: UnitOfWork, event: DomainEvent, _: CloudEvent) -> None:
    assert isinstance(event, PatientRegistered)
    status = await _status(uow, event.patient_id)
    status.birth_date, status.updated_at = event.birth_date, utcnow()
    uow.session.add(status)


async def on_patient_updated(uow: UnitOfWork, event: DomainEvent, _: CloudEvent) -> None:
    assert isinstance(event, PatientUpdated)
    status = await _status(uow, event.patient_id)
    status.birth_date, status.updated_at = event.birth_date, utcnow()
    uow.session.add(status)


async def on_patient_deactivated(uow: UnitOfWork, event: DomainEvent, _: CloudEvent) -> None:
    assert isinstance(event, PatientDeactivated)
    status = await _status(uow, event.patient_id)
    status.active, status.updated_at = False, utcnow()
    uow.session.add(status)
    await hold_open_courses(uow, event.patient_id, "the patient's record was deactivated at intake")


async def on_screening_completed(uow: UnitOfWork, event: DomainEvent, _: CloudEvent) -> None:
    assert isinstance(event, ScreeningCompleted)
    status = await _status(uow, event.patient_id)
    if _is_older(event.screened_at, status.latest_screening_at):
        return  # a newer screening already decides eligibility
    status.latest_screening_id = event.screening_id
    status.latest_screening_at = event.screened_at
    status.screening_outcome = event.outcome
    status.eligible = ScreeningOutcome(event.outcome) is ScreeningOutcome.eligible
    status.updated_at = utcnow()
    uow.session.add(status)


async def on_medical_review_decided(uow: UnitOfWork, event: DomainEvent, _: CloudEvent) -> None:
    assert isinstance(event, MedicalReviewDecided)
    status = await _status(uow, event.patient_id)
    if status.latest_screening_id != event.screening_id:
        return  # a review of a screening that a newer one has replaced decides nothing now
    status.eligible, status.updated_at = event.eligible, utcnow()
    uow.session.add(status)


async def on_consent_signed(uow: UnitOfWork, event: DomainEvent, _: CloudEvent) -> None:
    assert isinstance(event, ConsentSigned)
    if await uow.session.get(ConsentRecord, event.consent_id) is None:
        uow.session.add(
            ConsentRecord(consent_id=event.consent_id, patient_id=event.patient_id, signed_at=event.signed_at)
        )


async def on_consent_withdrawn(uow: UnitOfWork, event: DomainEvent, _: CloudEvent) -> None:
    assert isinstance(event, ConsentWithdrawn)
    record = await uow.session.get(ConsentRecord, event.consent_id)
    if record is None:
        record = ConsentRecord(consent_id=event.consent_id, patient_id=event.patient_id, signed_at=event.withdrawn_at)
    record.withdrawn_at = event.withdrawn_at
    uow.session.add(record)
    await uow.session.flush()
    if not await has_valid_consent(uow, event.patient_id):
        await hold_open_courses(uow, event.patient_id, "consent was withdrawn")


async def on_safety_flag_raised(uow: UnitOfWork, event: DomainEvent, _: CloudEvent) -> None:
    """A PHQ-9 item-9 flag raised at intake blocks course planning and dosing here until acknowledged."""
    assert isinstance(event, SafetyFlagRaised)
    if await uow.session.get(PatientSafetyFlag, event.flag_id) is None:
        uow.session.add(
            PatientSafetyFlag(flag_id=event.flag_id, patient_id=event.patient_id, raised_at=event.raised_at)
        )


async def on_safety_flag_acknowledged(uow: UnitOfWork, event: DomainEvent, _: CloudEvent) -> None:
    assert isinstance(event, SafetyFlagAcknowledged)
    flag = await uow.session.get(PatientSafetyFlag, event.flag_id)
    if flag is None:
        # Acknowledged before sessions learnt it was raised (a truncated topic): it is not open either way.
        flag = PatientSafetyFlag(flag_id=event.flag_id, patient_id=event.patient_id, raised_at=event.acknowledged_at)
    flag.acknowledged_at = event.acknowledged_at
    uow.session.add(flag)


async def has_valid_consent(uow: UnitOfWork, patient_id: uuid.UUID) -> bool:
    rows = await uow.session.exec(
        select(ConsentRecord).where(ConsentRecord.patient_id == patient_id, col(ConsentRecord.withdrawn_at).is_(None))
    )
    return rows.first() is not None


def _is_older(moment: datetime, than: datetime | None) -> bool:
    return than is not None and moment < than


HANDLERS: dict[type[DomainEvent], Handler] = {
    PatientRegistered: on_patient_registered,
    PatientUpdated: on_patient_updated,
    PatientDeactivated: on_patient_deactivated,
    ScreeningCompleted: on_screening_completed,
    MedicalReviewDecided: on_medical_review_decided,
    ConsentSigned: on_consent_signed,
    ConsentWithdrawn: on_consent_withdrawn,
    SafetyFlagRaised: on_safety_flag_raised,
    SafetyFlagAcknowledged: on_safety_flag_acknowledged,
}
