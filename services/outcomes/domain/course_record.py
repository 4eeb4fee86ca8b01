"""One course judged as a whole: its facts summarised, each instrument's trajectory and result, and its
follow-ups. What a clinician's chart shows and what the cohorts count are both built here, from the same call,
so the site's trajectories and the published aggregates cannot drift apart.

Attribution rules (clinic policy, since intake's and billing's events do not always name a course):
- A safety flag belongs to a course when raised from the course's planning to its end (or now, while open).
- An access barrier names its course, or else belongs to the first course planned at or after it was recorded
  (care put off before the course was planned), or else to the latest course planned before it.
- Failed adequate antidepressant trials are the patient's, and count for each of their courses.
- A course's scores stop where the patient's next course begins (its first dose): a later course's scores are
  its own, never the earlier course's result, time to response or follow-ups (found in review: a second course
  filled the first one's follow-ups, and a course left on hold took the next one's result).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from services.outcomes.domain.cohorts import CourseOutcome
from services.outcomes.domain.course_summary import CourseFacts, CourseSummary, summarise
from services.outcomes.domain.definitions import OutcomeDefinition
from services.outcomes.domain.followups import FollowUpResult, FollowUpStatus, follow_up_results
from services.outcomes.domain.trajectory import CourseResult, Measurement, course_result
from shared.instants import local_date
from shared.instruments.scoring import Instrument
from shared.treatment import CourseStatus, Indication, Route

# Statuses a course ends in; its end starts the follow-ups.
ENDED_STATUSES = frozenset({CourseStatus.completed, CourseStatus.discontinued})


class CourseRecord(BaseModel):
    """A course and everything outcomes learnt of it."""

    model_config = ConfigDict(frozen=True)

    course_id: uuid.UUID
    patient_id: uuid.UUID
    indication: Indication
    facts: CourseFacts


class CourseTrajectory(BaseModel):
    """A course judged by one definition on one day."""

    model_config = ConfigDict(frozen=True)

    course_id: uuid.UUID
    patient_id: uuid.UUID
    indication: Indication
    route: Route
    status: CourseStatus
    planned_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    definition: str
    summary: CourseSummary
    results: dict[Instrument, CourseResult]
    follow_ups: tuple[FollowUpResult, ...]

    @property
    def ended(self) -> bool:
        return self.status in ENDED_STATUSES and self.ended_at is not None

    def cohort_member(self) -> CourseOutcome:
        return CourseOutcome(
            indication=self.indication,
            route=self.route,
            status=self.status,
            planned_at=self.planned_at,
            summary=self.summary,
            results=self.results,
        )

    def follow_ups_due(self) -> list[FollowUpResult]:
        return [f for f in self.follow_ups if f.status is FollowUpStatus.due]


def judge_course(
    record: CourseRecord,
    measurements: Sequence[Measurement],
    definition: OutcomeDefinition,
    zone: ZoneInfo,
    today: date,
) -> CourseTrajectory:
    """``measurements`` are all of the patient's scores; each instrument's trajectory picks its own."""
    facts = record.facts
    summary = summarise(facts)
    ended = facts.status in ENDED_STATUSES and facts.ended_at is not None
    ended_at = facts.ended_at if ended else None
    results = {
        instrument: course_result(
            instrument,
            measurements,
            first_dose_at=summary.first_dose_at,
            ended_at=ended_at,
            definition=definition,
            zone=zone,
        )
        for instrument in Instrument
    }
    follow_ups: list[FollowUpResult] = []
    # Follow-ups measure durability: only for a course that was dosed and has ended.
    if ended_at is not None and summary.first_dose_at is not None:
        for instrument, result in results.items():
            if result.baseline is None:
                continue
            follow_ups.extend(
                follow_up_results(
                    instrument,
                    measurements,
                    course_ended_on=local_date(ended_at, zone),
                    baseline=result.baseline,
                    course_responded=result.responded,
                    definition=definition,
                    today=today,
                    zone=zone,
                )
            )
    return CourseTrajectory(
        course_id=record.course_id,
        patient_id=record.patient_id,
        indication=record.indication,
        route=facts.route,
        status=facts.status,
        planned_at=facts.planned_at,
        ended_at=ended_at,
        end_reason=facts.end_reason,
        definition=definition.key,
        summary=summary,
        results=results,
        follow_ups=tuple(follow_ups),
    )


def _first_dose(record: CourseRecord) -> datetime | None:
    return min((d.at for d in record.facts.doses), default=None)


def next_course_begins(record: CourseRecord, others: Sequence[CourseRecord]) -> datetime | None:
    """When the patient's next course began (its first dose), after this one began (its first dose, or its
    planning while undosed); None when no later course was dosed."""
    began = _first_dose(record) or record.facts.planned_at
    later = [
        first
        for other in others
        if other.course_id != record.course_id and (first := _first_dose(other)) is not None and first > began
    ]
    return min(later, default=None)


def judge_patient_courses(
    records: Sequence[CourseRecord],
    measurements: Sequence[Measurement],
    definition: OutcomeDefinition,
    zone: ZoneInfo,
    today: date,
) -> list[CourseTrajectory]:
    """Every course of one patient, each judged on the scores before the patient's next course began."""
    judged = []
    for record in records:
        cutoff = next_course_begins(record, records)
        own = measurements if cutoff is None else [m for m in measurements if m.administered_at < cutoff]
        judged.append(judge_course(record, own, definition, zone, today))
    return judged


def flag_in_course(raised_at: datetime, planned_at: datetime, ended_at: datetime | None) -> bool:
    return planned_at <= raised_at and (ended_at is None or raised_at <= ended_at)


def course_of_barrier(recorded_at: datetime, courses: Sequence[tuple[uuid.UUID, datetime]]) -> uuid.UUID | None:
    """The course a barrier that names none belongs to, among the patient's (course id, planned at)."""
    ordered = sorted(courses, key=lambda c: c[1])
    later = [course_id for course_id, planned_at in ordered if planned_at >= recorded_at]
    if later:
        return later[0]
    return ordered[-1][0] if ordered else None
