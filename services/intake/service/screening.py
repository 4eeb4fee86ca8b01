"""Eligibility screening and the clinician's medical review."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlmodel import col, select

from services.intake.models import Screening
from services.intake.screening import (
    BloodPressureThreshold,
    EarlierScreening,
    MedicalReviewDecision,
    ReviewNotAllowed,
    ScreeningAnswers,
    ScreeningResult,
    eligibility_after_review,
    screen,
)
from services.intake.service.patients import patient_or_404
from shared.audit import record_access
from shared.auth.guard import Actor
from shared.auth.permissions import Role
from shared.bus.tables import utcnow
from shared.db.unit_of_work import UnitOfWork
from shared.errors import Conflict, RecordNotFound
from shared.events.intake import MedicalReviewDecided, ScreeningCompleted


def result_of(screening: Screening) -> ScreeningResult:
    return ScreeningResult.model_validate({"outcome": screening.outcome, "reasons": screening.reasons})


def decision_of(screening: Screening) -> MedicalReviewDecision | None:
    if screening.review_decision is None:
        return None
    return MedicalReviewDecision.model_validate(
        {"decision": screening.review_decision, "rationale": screening.review_rationale}
    )


def is_eligible(screening: Screening) -> bool:
    return eligibility_after_review(result_of(screening), decision_of(screening))


def earlier_of(screening: Screening) -> EarlierScreening:
    return EarlierScreening(
        screened_on=screening.screened_at.date(), result=result_of(screening), decision=decision_of(screening)
    )


async def _earlier_screenings(uow: UnitOfWork, patient_id: uuid.UUID) -> list[EarlierScreening]:
    """The patient's screenings so far, newest first: the re-screening rule reads back from the latest."""
    rows = await uow.session.exec(
        select(Screening).where(Screening.patient_id == patient_id).order_by(col(Screening.screened_at).desc())
    )
    return [earlier_of(row) for row in rows.all()]


async def record_screening(
    uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, answers: ScreeningAnswers, threshold: BloodPressureThreshold
) -> Screening:
    patient = await patient_or_404(uow, patient_id)
    if not patient.active:
        raise Conflict("the patient is deactivated")
    now = utcnow()
    earlier = await _earlier_screenings(uow, patient.id)
    result = screen(
        answers, birth_date=patient.birth_date, screened_on=now.date(), earlier=earlier, bp_threshold=threshold
    )
    screening = Screening(
        patient_id=patient.id,
        screened_at=now,
        answers=answers.model_dump(mode="json"),
        systolic_mmhg=answers.systolic_mmhg,
        diastolic_mmhg=answers.diastolic_mmhg,
        bp_threshold=f"{threshold.systolic_mmhg}/{threshold.diastolic_mmhg}",
        outcome=result.outcome.value,
        reasons=[r.model_dump(mode="json") for r in result.reasons],
        recorded_by=actor.sub,
    )
    uow.session.add(screening)
    await uow.publish(
        ScreeningCompleted(
            patient_id=patient.id,
            screening_id=screening.id,
            outcome=result.outcome.value,
            reason_codes=[r.code.value for r in result.reasons],
            screened_at=now,
            with_medical_services=Role.clinician in actor.principal.roles,
        )
    )
    record_access(uow, actor, "screening.record", patient.id, f"patients/{patient.id}/screenings/{screening.id}")
    await uow.commit()
    return screening


async def decide_medical_review(
    uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, screening_id: uuid.UUID, decision: MedicalReviewDecision
) -> Screening:
    screening = await _screening(uow, patient_id, screening_id)
    if screening.review_decision is not None:
        raise Conflict(f"this screening's review was already decided ({screening.review_decision})")
    try:
        eligible = eligibility_after_review(result_of(screening), decision)
    except ReviewNotAllowed as exc:
        raise Conflict(str(exc)) from None
    now = utcnow()
    screening.review_decision = decision.decision.value
    screening.review_rationale = decision.rationale
    screening.reviewed_by = actor.sub
    screening.reviewed_at = now
    uow.session.add(screening)
    await uow.publish(
        MedicalReviewDecided(
            patient_id=patient_id,
            screening_id=screening.id,
            decision=decision.decision.value,
            eligible=eligible,
            decided_at=now,
        )
    )
    record_access(uow, actor, "medical_review.decide", patient_id, f"patients/{patient_id}/screenings/{screening.id}")
    await uow.commit()
    return screening


async def patient_screenings(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID) -> Sequence[Screening]:
    await patient_or_404(uow, patient_id)
    rows = await uow.session.exec(
        select(Screening).where(Screening.patient_id == patient_id).order_by(col(Screening.screened_at).desc())
    )
    record_access(uow, actor, "screening.read", patient_id, f"patients/{patient_id}/screenings")
    await uow.commit()
    return rows.all()


async def read_screening(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, screening_id: uuid.UUID) -> Screening:
    screening = await _screening(uow, patient_id, screening_id)
    record_access(uow, actor, "screening.read", patient_id, f"patients/{patient_id}/screenings/{screening.id}")
    await uow.commit()
    return screening


async def _screening(uow: UnitOfWork, patient_id: uuid.UUID, screening_id: uuid.UUID) -> Screening:
    screening = await uow.session.get(Screening, screening_id)
    if screening is None or screening.patient_id != patient_id:
        raise RecordNotFound("screening")
    return screening
