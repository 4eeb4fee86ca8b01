"""Outcomes' event handlers. Each runs inside the consumer's transaction, with the inbox entry, and writes one
row per fact keyed by the id its event carries, so a redelivered event finds its row and adds nothing.

Site role: what intake, sessions and billing report of each patient's treatment. Network role: the aggregates
the sites publish (the only events it reads)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.outcomes.domain.course_record import ENDED_STATUSES
from services.outcomes.domain.course_summary import PayerGroup
from services.outcomes.domain.registrations import month_of
from services.outcomes.models import (
    NetworkAggregate,
    OutcomeAdverseEvent,
    OutcomeBarrier,
    OutcomeCourse,
    OutcomeCoverage,
    OutcomeDose,
    OutcomeMeasurement,
    OutcomePatient,
    OutcomePriorTreatment,
    OutcomeSafetyFlag,
    OutcomeSession,
    OutcomeVitalsAlert,
    Registration,
)
from shared.bus.consumer import Batched, Delivered, Handler, PoisonEvent
from shared.bus.facts import Fact, fact, load_held, written_once
from shared.bus.tables import utcnow
from shared.db.unit_of_work import UnitOfWork
from shared.events.billing import AccessBarrierRecorded, CoverageDetermined
from shared.events.envelope import CloudEvent
from shared.events.intake import (
    AssessmentRecorded,
    AssessmentRecordedV1,
    PatientRegistered,
    PatientUpdated,
    PriorTreatmentRecorded,
    SafetyFlagRaised,
)
from shared.events.outcomes import CohortAggregatePublished
from shared.events.registry import DomainEvent
from shared.events.sessions import (
    AdverseEventReported,
    CoursePlanned,
    CourseStatusChanged,
    DoseAdministered,
    InCourseAssessmentRecorded,
    InCourseAssessmentRecordedV1,
    InCourseSafetyFlagRaised,
    SessionScheduled,
    VitalsAlertRaised,
)
from shared.instruments.scoring import Instrument
from shared.measures.models import MeasureContext
from shared.prior_treatment import Antidepressant, failed_adequate_trial
from shared.privacy.release import release_rules_broken
from shared.treatment import CourseStatus


@written_once
def on_patient_registered(event: DomainEvent, _envelope: CloudEvent) -> list[Fact[Any]]:
    assert isinstance(event, PatientRegistered)
    return [
        fact(Registration)(patient_id=event.patient_id, registered_month=month_of(event.registered_at)),
        fact(OutcomePatient)(
            patient_id=event.patient_id, birth_date=event.birth_date, registered_at=event.registered_at
        ),
    ]


async def _patients_updated(uow: UnitOfWork, delivered: Sequence[Delivered]) -> None:
    events = [event for event, _ in delivered if isinstance(event, PatientUpdated)]
    patients = await load_held(uow, OutcomePatient, [event.patient_id for event in events])
    for event in events:
        patient = patients.get(event.patient_id)
        if patient is not None and patient.birth_date != event.birth_date:
            patient.birth_date = event.birth_date
            uow.session.add(patient)


# Reads the patient a registration wrote, so it runs after the facts of its stretch of a batch.
on_patient_updated = Batched(_patients_updated, commutes=True, after_facts=True)


def _measurement(event: AssessmentRecorded) -> Fact[OutcomeMeasurement]:
    return fact(OutcomeMeasurement)(
        assessment_id=event.assessment_id,
        patient_id=event.patient_id,
        instrument=Instrument(event.instrument),
        total=event.total,
        context=MeasureContext(event.context),
        administered_at=event.administered_at,
    )


@written_once
def on_assessment(event: DomainEvent, _envelope: CloudEvent) -> list[Fact[Any]]:
    """From intake (at baseline, at follow-ups) and from sessions (during the course)."""
    assert isinstance(event, AssessmentRecorded)
    return [_measurement(event)]


@written_once
def on_assessment_v1(event: DomainEvent, _envelope: CloudEvent) -> list[Fact[Any]]:
    """Scores published before assessment.recorded v2 (severity spelt differently), read as v2."""
    assert isinstance(event, AssessmentRecordedV1)
    return [_measurement(event.upgraded())]


@written_once
def on_safety_flag(event: DomainEvent, _envelope: CloudEvent) -> list[Fact[Any]]:
    assert isinstance(event, SafetyFlagRaised)
    return [fact(OutcomeSafetyFlag)(flag_id=event.flag_id, patient_id=event.patient_id, raised_at=event.raised_at)]


@written_once
def on_prior_treatment(event: DomainEvent, _envelope: CloudEvent) -> list[Fact[Any]]:
    assert isinstance(event, PriorTreatmentRecorded)
    failed = failed_adequate_trial(
        event.kind, current_episode=event.current_episode, adequate=event.adequate, outcome=event.outcome
    )
    return [
        fact(OutcomePriorTreatment)(
            prior_treatment_id=event.prior_treatment_id,
            patient_id=event.patient_id,
            # Keyed as intake's failed_adequate_trials counts them, one per drug of the list ("other" is one):
            # the cohorts' failed-trials band then agrees with intake's treatment-resistance decision.
            failed_trial_of=(event.drug or Antidepressant.other).value if failed else None,
        )
    ]


@written_once
def on_course_planned(event: DomainEvent, _envelope: CloudEvent) -> list[Fact[Any]]:
    assert isinstance(event, CoursePlanned)
    return [
        fact(OutcomeCourse)(
            course_id=event.course_id,
            patient_id=event.patient_id,
            indication=event.indication,
            route=event.route,
            status=CourseStatus.planned,
            planned_at=event.planned_at,
        )
    ]


async def _course_status_changes(uow: UnitOfWork, delivered: Sequence[Delivered]) -> None:
    events = [event for event, _ in delivered if isinstance(event, CourseStatusChanged)]
    courses = await load_held(uow, OutcomeCourse, [event.course_id for event in events])
    for event in events:
        course = courses.get(event.course_id)
        if course is None:
            continue  # planned before outcomes listened: nothing to follow
        course.status = event.status
        if event.status in ENDED_STATUSES:
            course.ended_at, course.end_reason = event.changed_at, event.reason
        uow.session.add(course)


# Reads the course its planning wrote, so it runs after the facts of its stretch of a batch; in record order.
on_course_status = Batched(_course_status_changes, commutes=True, after_facts=True)


@written_once
def on_session_scheduled(event: DomainEvent, _envelope: CloudEvent) -> list[Fact[Any]]:
    assert isinstance(event, SessionScheduled)
    return [fact(OutcomeSession)(session_id=event.session_id, course_id=event.course_id)]


@written_once
def on_dose(event: DomainEvent, _envelope: CloudEvent) -> list[Fact[Any]]:
    assert isinstance(event, DoseAdministered)
    return [
        fact(OutcomeSession)(session_id=event.session_id, course_id=event.course_id),
        fact(OutcomeDose)(
            session_id=event.session_id,
            course_id=event.course_id,
            route=event.route,
            dose_mg=event.dose_mg,
            mg_per_kg=event.dose_mg_per_kg,
            administered_at=event.administered_at,
        ),
    ]


@written_once
def on_adverse_event(event: DomainEvent, _envelope: CloudEvent) -> list[Fact[Any]]:
    assert isinstance(event, AdverseEventReported)
    return [
        fact(OutcomeAdverseEvent)(
            adverse_event_id=event.adverse_event_id,
            session_id=event.session_id,
            type=event.type,
            serious=event.serious,
            occurred_at=event.occurred_at,
        )
    ]


@written_once
def on_vitals_alert(event: DomainEvent, envelope: CloudEvent) -> list[Fact[Any]]:
    assert isinstance(event, VitalsAlertRaised)
    return [
        fact(OutcomeVitalsAlert)(
            event_id=envelope.id, session_id=event.session_id, code=event.code, taken_at=event.taken_at
        )
    ]


async def _coverage_determined(uow: UnitOfWork, delivered: Sequence[Delivered]) -> None:
    """Billing's latest determination says whether the course is self-pay or insured."""
    events = [event for event, _ in delivered if isinstance(event, CoverageDetermined)]
    held = await load_held(uow, OutcomeCoverage, [event.course_id for event in events])
    for event in events:
        payer = PayerGroup.self_pay if event.payer_type == "self_pay" else PayerGroup.insured
        coverage = held.get(event.course_id)
        if coverage is None:
            coverage = OutcomeCoverage(course_id=event.course_id, payer=payer, determined_at=event.determined_at)
            held[event.course_id] = coverage  # a later determination in this run finds it
            uow.session.add(coverage)
        elif coverage.determined_at <= event.determined_at:
            coverage.payer, coverage.determined_at = payer, event.determined_at
            uow.session.add(coverage)


# Only it writes a course's coverage, and it reads nothing else: taken with the facts, in record order.
on_coverage = Batched(_coverage_determined, commutes=True)


@written_once
def on_barrier(event: DomainEvent, _envelope: CloudEvent) -> list[Fact[Any]]:
    assert isinstance(event, AccessBarrierRecorded)
    return [
        fact(OutcomeBarrier)(
            barrier_id=event.barrier_id,
            patient_id=event.patient_id,
            course_id=event.course_id,
            reason=event.reason,
            outcome=event.outcome,
            estimated_out_of_pocket_cents=event.estimated_out_of_pocket_cents,
            recorded_at=event.recorded_at,
        )
    ]


SITE_HANDLERS: dict[str, dict[type[DomainEvent], Handler]] = {
    "intake": {
        PatientRegistered: on_patient_registered,
        PatientUpdated: on_patient_updated,
        AssessmentRecorded: on_assessment,
        AssessmentRecordedV1: on_assessment_v1,
        SafetyFlagRaised: on_safety_flag,
        PriorTreatmentRecorded: on_prior_treatment,
    },
    "sessions": {
        CoursePlanned: on_course_planned,
        CourseStatusChanged: on_course_status,
        SessionScheduled: on_session_scheduled,
        DoseAdministered: on_dose,
        AdverseEventReported: on_adverse_event,
        VitalsAlertRaised: on_vitals_alert,
        InCourseAssessmentRecorded: on_assessment,
        InCourseAssessmentRecordedV1: on_assessment_v1,
        InCourseSafetyFlagRaised: on_safety_flag,
    },
    "billing": {CoverageDetermined: on_coverage, AccessBarrierRecorded: on_barrier},
}


async def on_cohort_aggregate(uow: UnitOfWork, event: DomainEvent, _envelope: CloudEvent) -> None:
    assert isinstance(event, CohortAggregatePublished)
    row = await uow.session.get(NetworkAggregate, (event.site, event.cohort))
    held = CohortAggregatePublished.model_validate(row.aggregate) if row is not None else None
    broken = release_rules_broken(held, event)
    if broken:
        raise PoisonEvent(f"{event.site}|{event.cohort} breaks the release rules: {'; '.join(broken)}")
    if row is None:
        row = NetworkAggregate(site=event.site, cohort=event.cohort, aggregate={}, received_at=utcnow())
    row.aggregate = event.model_dump(mode="json")
    row.received_at = utcnow()
    uow.session.add(row)


async def on_cohort_outcomes(uow: UnitOfWork, event: DomainEvent, _envelope: CloudEvent) -> None:
    """Network role: the latest publication of each site's cohort (an older one redelivered is not taken in)."""
    # Imported here rather than at the top: this function is the network role's one addition to this module.
    from services.outcomes.service import network
    from shared.events.outcomes import CohortOutcomesPublished

    assert isinstance(event, CohortOutcomesPublished)
    await network.record_cohort_outcomes(uow, event)
