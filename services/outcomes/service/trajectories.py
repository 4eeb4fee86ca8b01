"""Site role use cases: load what outcomes learnt of a patient's (or every) course, judge it, keep each result
with the definition it was judged by, and announce follow-ups that fell due."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict
from sqlmodel import col, select

from services.outcomes.domain.course_record import (
    CourseRecord,
    CourseTrajectory,
    course_of_barrier,
    flag_in_course,
    judge_patient_courses,
)
from services.outcomes.domain.course_summary import (
    AdverseEventSeen,
    BarrierSeen,
    CourseFacts,
    DoseGiven,
    PayerGroup,
)
from services.outcomes.domain.definitions import OutcomeDefinition
from services.outcomes.domain.trajectory import Measurement
from services.outcomes.models import (
    FollowUpAnnounced,
    OutcomeAdverseEvent,
    OutcomeBarrier,
    OutcomeCourse,
    OutcomeCoverage,
    OutcomeDose,
    OutcomeMeasurement,
    OutcomePatient,
    OutcomePriorTreatment,
    OutcomeResult,
    OutcomeSafetyFlag,
    OutcomeSession,
    OutcomeVitalsAlert,
)
from shared.audit import record_access
from shared.auth.guard import Actor
from shared.db.unit_of_work import UnitOfWork
from shared.errors import RecordNotFound
from shared.events.outcomes import FollowUpDue
from shared.instruments.scoring import Instrument
from shared.treatment import VitalsAlertCode


class StoredResult(BaseModel):
    """A result as it was stored, with the definition it was judged by."""

    model_config = ConfigDict(frozen=True)

    course_id: uuid.UUID
    instrument: Instrument
    definition: str
    baseline: int | None
    last_in_course: int | None
    responded: bool | None
    remitted: bool | None
    hours_to_response: float | None
    days_to_response: int | None
    judged_at: datetime


class PatientOutcomes(BaseModel):
    """One patient's chart: every score, each course judged, and every result stored under any definition."""

    model_config = ConfigDict(frozen=True)

    patient_id: uuid.UUID
    measurements: tuple[Measurement, ...]
    courses: tuple[CourseTrajectory, ...]
    stored_results: tuple[StoredResult, ...]


def _in(column: object, patient_ids: Sequence[uuid.UUID] | None) -> list[object]:
    return [] if patient_ids is None else [col(column).in_(patient_ids)]  # type: ignore[arg-type]


async def load_measurements(
    uow: UnitOfWork, patient_ids: Sequence[uuid.UUID] | None = None
) -> dict[uuid.UUID, list[Measurement]]:
    rows = await uow.session.exec(
        select(OutcomeMeasurement)
        .where(*_in(OutcomeMeasurement.patient_id, patient_ids))  # type: ignore[arg-type]
        .order_by(col(OutcomeMeasurement.administered_at))
    )
    by_patient: dict[uuid.UUID, list[Measurement]] = defaultdict(list)
    for row in rows.all():
        by_patient[row.patient_id].append(
            Measurement(
                assessment_id=row.assessment_id,
                instrument=row.instrument,
                total=row.total,
                context=row.context,
                administered_at=row.administered_at,
            )
        )
    return by_patient


async def load_course_records(uow: UnitOfWork, patient_ids: Sequence[uuid.UUID] | None = None) -> list[CourseRecord]:
    """Every course of the given patients (of the site when None), with its facts, in planning order. A few
    queries for all courses at once rather than a few per course: the beat loads the whole site."""
    courses = list(
        (
            await uow.session.exec(
                select(OutcomeCourse)
                .where(*_in(OutcomeCourse.patient_id, patient_ids))  # type: ignore[arg-type]
                .order_by(col(OutcomeCourse.planned_at), col(OutcomeCourse.course_id))
            )
        ).all()
    )
    if not courses:
        return []
    course_ids = [c.course_id for c in courses]
    owners = sorted({c.patient_id for c in courses})
    patients = {
        p.patient_id: p
        for p in (
            await uow.session.exec(select(OutcomePatient).where(col(OutcomePatient.patient_id).in_(owners)))
        ).all()
    }
    coverage = {
        c.course_id: c.payer
        for c in (
            await uow.session.exec(select(OutcomeCoverage).where(col(OutcomeCoverage.course_id).in_(course_ids)))
        ).all()
    }
    doses: dict[uuid.UUID, list[DoseGiven]] = defaultdict(list)
    for dose in (await uow.session.exec(select(OutcomeDose).where(col(OutcomeDose.course_id).in_(course_ids)))).all():
        doses[dose.course_id].append(
            DoseGiven(route=dose.route, dose_mg=dose.dose_mg, mg_per_kg=dose.mg_per_kg, at=dose.administered_at)
        )
    session_course = {
        s.session_id: s.course_id
        for s in (
            await uow.session.exec(select(OutcomeSession).where(col(OutcomeSession.course_id).in_(course_ids)))
        ).all()
    }
    sessions = list(session_course)
    adverse: dict[uuid.UUID, list[AdverseEventSeen]] = defaultdict(list)
    for event in (
        await uow.session.exec(select(OutcomeAdverseEvent).where(col(OutcomeAdverseEvent.session_id).in_(sessions)))
    ).all():
        adverse[session_course[event.session_id]].append(AdverseEventSeen(type=event.type, serious=event.serious))
    alerts: dict[uuid.UUID, list[VitalsAlertCode]] = defaultdict(list)
    for alert in (
        await uow.session.exec(select(OutcomeVitalsAlert).where(col(OutcomeVitalsAlert.session_id).in_(sessions)))
    ).all():
        alerts[session_course[alert.session_id]].append(alert.code)
    flags: dict[uuid.UUID, list[datetime]] = defaultdict(list)
    for flag in (
        await uow.session.exec(select(OutcomeSafetyFlag).where(col(OutcomeSafetyFlag.patient_id).in_(owners)))
    ).all():
        flags[flag.patient_id].append(flag.raised_at)
    failed: dict[uuid.UUID, set[str]] = defaultdict(set)
    for prior in (
        await uow.session.exec(select(OutcomePriorTreatment).where(col(OutcomePriorTreatment.patient_id).in_(owners)))
    ).all():
        if prior.failed_trial_of is not None:
            failed[prior.patient_id].add(prior.failed_trial_of)
    planned_by_patient: dict[uuid.UUID, list[tuple[uuid.UUID, datetime]]] = defaultdict(list)
    for course in courses:
        planned_by_patient[course.patient_id].append((course.course_id, course.planned_at))
    barriers: dict[uuid.UUID, list[BarrierSeen]] = defaultdict(list)
    for barrier in (
        await uow.session.exec(select(OutcomeBarrier).where(col(OutcomeBarrier.patient_id).in_(owners)))
    ).all():
        owner = barrier.course_id or course_of_barrier(barrier.recorded_at, planned_by_patient[barrier.patient_id])
        if owner is not None:
            barriers[owner].append(
                BarrierSeen(
                    reason=barrier.reason,
                    outcome=barrier.outcome,
                    estimated_out_of_pocket_cents=barrier.estimated_out_of_pocket_cents,
                )
            )
    records = []
    for course in courses:
        patient = patients.get(course.patient_id)
        records.append(
            CourseRecord(
                course_id=course.course_id,
                patient_id=course.patient_id,
                indication=course.indication,
                facts=CourseFacts(
                    route=course.route,
                    status=course.status,
                    end_reason=course.end_reason,
                    planned_at=course.planned_at,
                    ended_at=course.ended_at,
                    registered_at=patient.registered_at if patient else None,
                    birth_date=patient.birth_date if patient else None,
                    payer=coverage.get(course.course_id, PayerGroup.unknown),
                    failed_trials=len(failed[course.patient_id]),
                    doses=tuple(doses[course.course_id]),
                    adverse_events=tuple(adverse[course.course_id]),
                    vitals_alerts=tuple(alerts[course.course_id]),
                    safety_flags=sum(
                        flag_in_course(at, course.planned_at, course.ended_at) for at in flags[course.patient_id]
                    ),
                    barriers=tuple(barriers[course.course_id]),
                ),
            )
        )
    return records


class SiteFacts(BaseModel):
    """Everything outcomes knows of the site's courses, loaded at once so it can be judged with no transaction
    open (on SQLite a transaction holds the one connection and the write lock)."""

    model_config = ConfigDict(frozen=True)

    records: tuple[CourseRecord, ...]
    measurements: dict[uuid.UUID, list[Measurement]]


async def load_site_facts(uow: UnitOfWork, patient_ids: Sequence[uuid.UUID] | None = None) -> SiteFacts:
    records = await load_course_records(uow, patient_ids)
    measurements = await load_measurements(uow, sorted({r.patient_id for r in records}))
    return SiteFacts(records=tuple(records), measurements=measurements)


async def judge_site(
    facts: SiteFacts, definition: OutcomeDefinition, zone: ZoneInfo, today: date
) -> list[CourseTrajectory]:
    by_patient: dict[uuid.UUID, list[CourseRecord]] = defaultdict(list)
    for record in facts.records:
        by_patient[record.patient_id].append(record)

    def judge_all() -> list[CourseTrajectory]:
        judged = {
            t.course_id: t
            for patient_id, own in by_patient.items()
            for t in judge_patient_courses(own, facts.measurements.get(patient_id, []), definition, zone, today)
        }
        return [judged[r.course_id] for r in facts.records]  # in planning order, as loaded

    # Pure and CPU-bound (seconds for a site's whole history): off the event loop, so the consumers and the API
    # keep their turns while the beat judges.
    return await asyncio.to_thread(judge_all)


async def site_trajectories(
    uow: UnitOfWork,
    definition: OutcomeDefinition,
    zone: ZoneInfo,
    today: date,
    patient_ids: Sequence[uuid.UUID] | None = None,
) -> list[CourseTrajectory]:
    return await judge_site(await load_site_facts(uow, patient_ids), definition, zone, today)


async def patient_outcomes(
    uow: UnitOfWork,
    actor: Actor,
    patient_id: uuid.UUID,
    definition: OutcomeDefinition,
    zone: ZoneInfo,
    today: date,
) -> PatientOutcomes:
    if await uow.session.get(OutcomePatient, patient_id) is None:
        raise RecordNotFound("patient")
    record_access(uow, actor, "outcomes.read", patient_id, f"patients/{patient_id}/outcomes")
    await uow.commit()
    courses = await site_trajectories(uow, definition, zone, today, [patient_id])
    measurements = (await load_measurements(uow, [patient_id])).get(patient_id, [])
    stored = (
        await uow.session.exec(
            select(OutcomeResult)
            .where(col(OutcomeResult.course_id).in_([c.course_id for c in courses]))
            .order_by(col(OutcomeResult.judged_at), col(OutcomeResult.instrument))
        )
    ).all()
    return PatientOutcomes(
        patient_id=patient_id,
        measurements=tuple(measurements),
        courses=tuple(courses),
        stored_results=tuple(StoredResult.model_validate(row, from_attributes=True) for row in stored),
    )


class FollowUpToAsk(BaseModel):
    """A follow-up whose window is open with a score missing: who to ask, for what, by when."""

    model_config = ConfigDict(frozen=True)

    patient_id: uuid.UUID
    course_id: uuid.UUID
    indication: str
    week: int
    due_on: date
    window_closes_on: date
    instruments: tuple[Instrument, ...]


async def follow_ups_due(
    uow: UnitOfWork, actor: Actor, definition: OutcomeDefinition, zone: ZoneInfo, today: date
) -> list[FollowUpToAsk]:
    """Every follow-up due at the site today, the soonest to close first."""
    trajectories = await site_trajectories(uow, definition, zone, today)
    due = []
    for trajectory in trajectories:
        for week in sorted({f.week for f in trajectory.follow_ups_due()}):
            points = [f for f in trajectory.follow_ups_due() if f.week == week]
            due.append(
                FollowUpToAsk(
                    patient_id=trajectory.patient_id,
                    course_id=trajectory.course_id,
                    indication=trajectory.indication.value,
                    week=week,
                    due_on=points[0].due_on,
                    window_closes_on=points[0].closes_on,
                    instruments=tuple(p.instrument for p in points),
                )
            )
    # One entry per patient listed: the list names them, so each appears in their own audit trail.
    for patient_id in sorted({f.patient_id for f in due}):
        record_access(uow, actor, "outcomes.followups.read", patient_id, "followups/due")
    await uow.commit()
    return sorted(due, key=lambda f: (f.window_closes_on, f.due_on, str(f.patient_id), f.week))


async def record_results(uow: UnitOfWork, trajectories: Sequence[CourseTrajectory], now: datetime) -> int:
    """Keep each ended course's result per instrument under the definition it was judged by. A row under
    another definition is left as it is: a changed cutoff adds results, it never rewrites the earlier ones.
    Returns the rows written or changed."""
    ended = [t for t in trajectories if t.ended]
    if not ended:
        return 0
    existing = {
        (r.course_id, r.instrument, r.definition): r
        for r in (
            await uow.session.exec(
                select(OutcomeResult).where(col(OutcomeResult.course_id).in_([t.course_id for t in ended]))
            )
        ).all()
    }
    written = 0
    for trajectory in ended:
        for instrument, result in trajectory.results.items():
            if result.baseline is None or result.last_in_course is None:
                continue
            ttr = result.time_to_response
            values = {
                "baseline": result.baseline,
                "last_in_course": result.last_in_course,
                "responded": result.responded,
                "remitted": result.remitted,
                "hours_to_response": ttr.hours if ttr else None,
                "days_to_response": ttr.days if ttr else None,
            }
            row = existing.get((trajectory.course_id, instrument, result.definition))
            if row is None:
                row = OutcomeResult(
                    course_id=trajectory.course_id, instrument=instrument, definition=result.definition, judged_at=now
                )
            elif all(getattr(row, name) == value for name, value in values.items()):
                continue
            for name, value in values.items():
                setattr(row, name, value)
            # A score that arrived late (a redelivered event) corrects the facts, under the same definition.
            row.judged_at = now
            uow.session.add(row)
            written += 1
    return written


async def announce_due_follow_ups(uow: UnitOfWork, trajectories: Sequence[CourseTrajectory], now: datetime) -> int:
    """Publish followup.due once per (course, week) whose window is open without a score. Returns how many."""
    announced = {(a.course_id, a.week) for a in (await uow.session.exec(select(FollowUpAnnounced))).all()}
    published = 0
    for trajectory in trajectories:
        for week in sorted({f.week for f in trajectory.follow_ups_due()}):
            if (trajectory.course_id, week) in announced:
                continue
            due = next(f for f in trajectory.follow_ups_due() if f.week == week)
            # The event names the patient: it goes to the site's own outcomes topic, never the network's.
            await uow.publish(
                FollowUpDue(
                    patient_id=trajectory.patient_id,
                    course_id=trajectory.course_id,
                    week=week,
                    due_on=due.due_on,
                    window_closes_on=due.closes_on,
                )
            )
            uow.session.add(
                FollowUpAnnounced(course_id=trajectory.course_id, week=week, due_on=due.due_on, announced_at=now)
            )
            announced.add((trajectory.course_id, week))
            published += 1
    return published
