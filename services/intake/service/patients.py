"""Patients: register, search, read, update with optimistic concurrency, deactivate."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import func, or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import col, select

from services.intake.domain import (
    Deactivation,
    PatientRegistration,
    PatientUpdate,
    assign_mrn,
)
from services.intake.models import Patient
from shared.audit import record_access
from shared.auth.guard import Actor
from shared.bus.tables import utcnow
from shared.db.unit_of_work import UnitOfWork
from shared.errors import Conflict, RecordNotFound, StaleVersion
from shared.events.intake import (
    CoverageOnFile,
    PatientDeactivated,
    PatientRegistered,
    PatientUpdated,
)


async def register_patient(uow: UnitOfWork, actor: Actor, site: str, registration: PatientRegistration) -> Patient:
    patient_id = uuid.uuid4()
    data = registration.model_dump(mode="json", exclude={"mrn"})
    patient = Patient(
        id=patient_id,
        mrn=registration.mrn or assign_mrn(site, patient_id.hex),
        **{**data, "birth_date": registration.birth_date},
        registered_at=utcnow(),
    )
    uow.session.add(patient)
    await uow.publish(
        PatientRegistered(
            patient_id=patient.id,
            site=site,
            mrn=patient.mrn,
            given_name=patient.given_name,
            family_name=patient.family_name,
            birth_date=patient.birth_date,
            sex=patient.sex,
            registered_at=patient.registered_at,
            coverage=CoverageOnFile.model_validate(patient.coverage),
        )
    )
    record_access(uow, actor, "patient.register", patient.id, f"patients/{patient.id}")
    try:
        await uow.commit()
    except IntegrityError:
        raise Conflict(f"MRN {patient.mrn} is already used at this site") from None
    return patient


async def read_patient(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID) -> Patient:
    patient = await patient_or_404(uow, patient_id)
    record_access(uow, actor, "patient.read", patient.id, f"patients/{patient.id}")
    await uow.commit()
    return patient


async def search_patients(
    uow: UnitOfWork,
    actor: Actor,
    *,
    name: str | None,
    birth_date: date | None,
    mrn: str | None,
    include_inactive: bool,
    limit: int,
    offset: int,
) -> tuple[list[Patient], int]:
    query = select(Patient)
    if name:
        # The name is matched literally: a % or _ in it is a character, not a wildcard.
        escaped = name.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        query = query.where(
            or_(
                func.lower(Patient.family_name).like(pattern, escape="\\"),
                func.lower(Patient.given_name).like(pattern, escape="\\"),
                func.lower(col(Patient.preferred_name)).like(pattern, escape="\\"),
            )
        )
    if birth_date is not None:
        query = query.where(Patient.birth_date == birth_date)
    if mrn:
        query = query.where(Patient.mrn == mrn)
    if not include_inactive:
        query = query.where(col(Patient.active).is_(True))
    total = (await uow.session.exec(select(func.count()).select_from(query.subquery()))).one()
    page = (
        await uow.session.exec(
            query.order_by(func.lower(Patient.family_name), func.lower(Patient.given_name), col(Patient.id))
            .limit(limit)
            .offset(offset)
        )
    ).all()
    # Every patient shown in a result is a read of that patient's record.
    for patient in page:
        record_access(uow, actor, "patient.search", patient.id, f"patients/{patient.id}")
    await uow.commit()
    return list(page), int(total)


async def update_patient(
    uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, expected_version: int, update: PatientUpdate
) -> Patient:
    patient = await patient_or_404(uow, patient_id)
    if patient.version != expected_version:
        raise StaleVersion(f"the record is at version {patient.version}; your copy is version {expected_version}")
    if not patient.active:
        raise Conflict("the patient is deactivated; the record cannot change")
    changes: dict[str, Any] = update.model_dump(mode="json", exclude_unset=True)
    if "birth_date" in changes:
        changes["birth_date"] = update.birth_date
    changed = sorted(name for name, value in changes.items() if getattr(patient, name) != value)
    for name in changed:
        setattr(patient, name, changes[name])
    if not changed:
        # Nothing differs: no new version, no event; the caller still read the record.
        record_access(uow, actor, "patient.read", patient.id, f"patients/{patient.id}")
        await uow.commit()
        return patient
    uow.session.add(patient)
    try:
        await uow.session.flush()  # the version check happens here: UPDATE ... WHERE version = :expected
    except StaleDataError:
        raise StaleVersion("the record changed while you were editing it") from None
    await uow.publish(
        PatientUpdated(
            patient_id=patient.id,
            record_version=patient.version,
            changed=changed,
            given_name=patient.given_name,
            family_name=patient.family_name,
            birth_date=patient.birth_date,
            sex=patient.sex,
            coverage=CoverageOnFile.model_validate(patient.coverage),
            updated_at=utcnow(),
        )
    )
    record_access(uow, actor, "patient.update", patient.id, f"patients/{patient.id}")
    await uow.commit()
    return patient


async def deactivate_patient(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, request: Deactivation) -> Patient:
    patient = await patient_or_404(uow, patient_id)
    if not patient.active:
        raise Conflict("the patient is already deactivated")
    patient.active = False
    patient.deactivated_at = utcnow()
    patient.deactivation_reason = request.reason
    uow.session.add(patient)
    await uow.publish(
        PatientDeactivated(patient_id=patient.id, deactivated_at=patient.deactivated_at, reason=request.reason)
    )
    record_access(uow, actor, "patient.deactivate", patient.id, f"patients/{patient.id}")
    await uow.commit()
    return patient


async def patient_or_404(uow: UnitOfWork, patient_id: uuid.UUID) -> Patient:
    patient = await uow.session.get(Patient, patient_id)
    if patient is None:
        raise RecordNotFound("patient")
    return patient
