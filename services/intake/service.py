"""Intake's use cases: each one transaction, its events written to the outbox inside it."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError

from services.intake.domain import PatientRegistration, assign_mrn
from services.intake.models import Patient
from shared.audit import record_access
from shared.auth.guard import Actor
from shared.bus.tables import utcnow
from shared.db.unit_of_work import UnitOfWork
from shared.events.intake import PatientRegistered


class DuplicateMrn(Exception):
    pass


async def register_patient(uow: UnitOfWork, actor: Actor, site: str, registration: PatientRegistration) -> Patient:
    patient_id = uuid.uuid4()
    patient = Patient(
        id=patient_id,
        mrn=registration.mrn or assign_mrn(site, patient_id.hex),
        given_name=registration.given_name,
        family_name=registration.family_name,
        birth_date=registration.birth_date,
        sex=registration.sex.value,
        registered_at=utcnow(),
    )
    uow.session.add(patient)
    await uow.publish(
        PatientRegistered(
            patient_id=patient.id,
            site=site,
            mrn=patient.mrn,
            birth_date=patient.birth_date,
            sex=patient.sex,
            registered_at=patient.registered_at,
        )
    )
    record_access(uow, actor, "patient.register", patient.id, f"patients/{patient.id}")
    try:
        await uow.commit()
    except IntegrityError:
        raise DuplicateMrn(patient.mrn) from None
    return patient


async def read_patient(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID) -> Patient | None:
    patient = await uow.session.get(Patient, patient_id)
    if patient is not None:
        record_access(uow, actor, "patient.read", patient.id, f"patients/{patient.id}")
        await uow.commit()
    return patient
