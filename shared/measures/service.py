"""Measures scored by the shared instruments library, and the safety flags they raise: the same use cases in
every service that takes measures. A service names how it checks the patient and which events it publishes."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlmodel import col, select

from shared.audit import record_access
from shared.auth.guard import Actor
from shared.bus.tables import utcnow
from shared.db.unit_of_work import UnitOfWork
from shared.errors import Conflict, RecordNotFound
from shared.events.intake import AssessmentRecorded, SafetyFlagAcknowledged, SafetyFlagRaised
from shared.instruments import Instrument, score
from shared.measures.models import Assessment, SafetyFlag, SafetyFlagStatus

# PHQ-9 item 9 asks about thoughts of being better off dead or of self-harm: any answer above 0 needs a
# clinician's suicide-risk assessment whatever the total (Kroenke et al. 2001; PHQ instructions, Pfizer).
PHQ9_ITEM9_REASON = "phq9_item9_above_zero"

# Checks that the patient exists at this site (404) and, for a change (the bool), may have one (409).
PatientCheck = Callable[[UnitOfWork, uuid.UUID, bool], Awaitable[None]]


@dataclass(frozen=True)
class MeasureEvents:
    """The event types a service publishes for measures: same fields, the service's own topic and type."""

    recorded: type[AssessmentRecorded]
    flag_raised: type[SafetyFlagRaised]
    flag_acknowledged: type[SafetyFlagAcknowledged]


INTAKE_EVENTS = MeasureEvents(AssessmentRecorded, SafetyFlagRaised, SafetyFlagAcknowledged)


async def record_assessment(
    uow: UnitOfWork,
    actor: Actor,
    patient_id: uuid.UUID,
    instrument: Instrument,
    answers: Sequence[int],
    *,
    pcl5_cutoff: int,
    context: str,
    check_patient: PatientCheck,
    events: MeasureEvents,
) -> tuple[Assessment, SafetyFlag | None]:
    """Score, store every item answer with the instrument version, and raise a safety flag if item 9 calls for
    one. Raises AnswerError (naming the item) before anything is written."""
    result = score(instrument, answers, pcl5_cutoff=pcl5_cutoff)
    await check_patient(uow, patient_id, True)
    now = utcnow()
    assessment = Assessment(
        patient_id=patient_id,
        instrument=result.instrument.value,
        instrument_version=result.version,
        answers=list(result.answers),
        total=result.total,
        severity=result.severity.value if result.severity else None,
        clusters=result.clusters,
        provisional_ptsd=result.provisional_ptsd,
        cutoff=result.cutoff,
        at_or_above_cutoff=result.at_or_above_cutoff,
        context=context,
        administered_at=now,
        recorded_by=actor.sub,
    )
    uow.session.add(assessment)
    await uow.publish(
        events.recorded(
            patient_id=patient_id,
            assessment_id=assessment.id,
            instrument=result.instrument.value,
            instrument_version=result.version,
            total=result.total,
            severity=assessment.severity,
            clusters=result.clusters,
            provisional_ptsd=result.provisional_ptsd,
            context=context,
            administered_at=now,
        )
    )
    flag = None
    if result.safety_flag:
        flag = SafetyFlag(patient_id=patient_id, assessment_id=assessment.id, reason=PHQ9_ITEM9_REASON, raised_at=now)
        uow.session.add(flag)
        await uow.publish(
            events.flag_raised(
                patient_id=patient_id,
                flag_id=flag.id,
                assessment_id=assessment.id,
                reason=PHQ9_ITEM9_REASON,
                raised_at=now,
            )
        )
    record_access(uow, actor, "assessment.record", patient_id, f"patients/{patient_id}/assessments/{assessment.id}")
    await uow.commit()
    return assessment, flag


async def patient_assessments(
    uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, check_patient: PatientCheck
) -> Sequence[Assessment]:
    await check_patient(uow, patient_id, False)
    rows = await uow.session.exec(
        select(Assessment).where(Assessment.patient_id == patient_id).order_by(col(Assessment.administered_at))
    )
    record_access(uow, actor, "assessment.read", patient_id, f"patients/{patient_id}/assessments")
    await uow.commit()
    return rows.all()


async def safety_flags(
    uow: UnitOfWork,
    actor: Actor,
    patient_id: uuid.UUID,
    status: SafetyFlagStatus | None,
    check_patient: PatientCheck,
) -> Sequence[SafetyFlag]:
    await check_patient(uow, patient_id, False)
    query = select(SafetyFlag).where(SafetyFlag.patient_id == patient_id)
    if status is not None:
        query = query.where(SafetyFlag.status == status)
    rows = await uow.session.exec(query.order_by(col(SafetyFlag.raised_at)))
    record_access(uow, actor, "safety_flag.read", patient_id, f"patients/{patient_id}/safety-flags")
    await uow.commit()
    return rows.all()


async def acknowledge_safety_flag(
    uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, flag_id: uuid.UUID, note: str, events: MeasureEvents
) -> SafetyFlag:
    flag = await uow.session.get(SafetyFlag, flag_id)
    if flag is None or flag.patient_id != patient_id:
        raise RecordNotFound("safety flag")
    if flag.status != SafetyFlagStatus.open:
        raise Conflict("this safety flag was already acknowledged")
    now = utcnow()
    flag.status, flag.acknowledged_at, flag.acknowledged_by, flag.acknowledgement_note = (
        SafetyFlagStatus.acknowledged,
        now,
        actor.sub,
        note,
    )
    uow.session.add(flag)
    await uow.publish(
        events.flag_acknowledged(patient_id=patient_id, flag_id=flag.id, acknowledged_at=now, acknowledged_by=actor.sub)
    )
    record_access(uow, actor, "safety_flag.acknowledge", patient_id, f"patients/{patient_id}/safety-flags/{flag.id}")
    await uow.commit()
    return flag
