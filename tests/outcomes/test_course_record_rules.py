"""A course judged as a whole (the chart and the cohorts from one call), and which course a flag or a barrier
that names none belongs to: pure rules."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from services.outcomes.domain.course_record import CourseRecord, course_of_barrier, flag_in_course, judge_course
from services.outcomes.domain.definitions import OutcomeDefinition
from services.outcomes.domain.followups import FollowUpStatus
from services.outcomes.domain.trajectory import Measurement
from shared.instruments.scoring import Instrument
from shared.measures.models import MeasureContext
from shared.treatment import CourseStatus, Indication
from tests.outcomes.test_cohort_rules import MONDAY, facts

NEW_YORK = ZoneInfo("America/New_York")
PLANNED = datetime(2026, 1, 10, 15, tzinfo=UTC)


def phq9(total: int, at: datetime) -> Measurement:
    return Measurement(
        assessment_id=uuid.uuid4(),
        instrument=Instrument.phq9,
        total=total,
        context=MeasureContext.in_course,
        administered_at=at,
    )


def record(**changes: object) -> CourseRecord:
    return CourseRecord(
        course_id=uuid.uuid4(), patient_id=uuid.uuid4(), indication=Indication.depression, facts=facts(**changes)
    )


def test_a_barrier_naming_no_course_goes_to_the_course_planned_next_else_the_last_one() -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    courses = [(second, PLANNED + timedelta(days=90)), (first, PLANNED)]
    assert course_of_barrier(PLANNED - timedelta(days=3), courses) == first
    assert course_of_barrier(PLANNED + timedelta(days=3), courses) == second
    assert course_of_barrier(PLANNED + timedelta(days=200), courses) == second
    assert course_of_barrier(PLANNED, []) is None


def test_a_flag_belongs_to_the_course_it_was_raised_in() -> None:
    ended = PLANNED + timedelta(days=30)
    assert flag_in_course(PLANNED + timedelta(days=1), PLANNED, ended)
    assert not flag_in_course(PLANNED - timedelta(days=1), PLANNED, ended)
    assert not flag_in_course(ended + timedelta(seconds=1), PLANNED, ended)
    assert flag_in_course(PLANNED + timedelta(days=400), PLANNED, None)  # still open


def test_an_ended_course_is_judged_with_its_follow_ups_and_the_chart_and_the_cohort_agree() -> None:
    course = record()  # six doses from MONDAY, ended 20 days later
    scores = [
        phq9(20, MONDAY - timedelta(hours=2)),
        phq9(9, MONDAY + timedelta(days=7, hours=3)),
        phq9(6, MONDAY + timedelta(days=19)),
        phq9(7, MONDAY + timedelta(days=20 + 28)),
    ]
    today = date(2026, 6, 5)
    judged = judge_course(course, scores, OutcomeDefinition(), NEW_YORK, today)
    result = judged.results[Instrument.phq9]
    assert (result.baseline, result.last_in_course, result.responded, result.remitted) == (20, 6, True, False)
    assert judged.ended
    weeks = {f.week: f for f in judged.follow_ups if f.instrument is Instrument.phq9}
    assert weeks[4].status is FollowUpStatus.done and weeks[4].held is True
    assert weeks[12].status is FollowUpStatus.due  # due 2026-06-14, its window opened 2026-05-31
    assert weeks[26].status is FollowUpStatus.upcoming
    assert [f.week for f in judged.follow_ups_due()] == [12]
    # Instruments never scored have no baseline and so no follow-ups.
    assert {f.instrument for f in judged.follow_ups} == {Instrument.phq9}
    member = judged.cohort_member()
    assert member.results[Instrument.phq9] == result and member.summary == judged.summary


def test_a_running_course_has_no_follow_ups_and_an_undosed_one_no_result() -> None:
    running = judge_course(
        record(status=CourseStatus.active, ended_at=None),
        [phq9(20, MONDAY - timedelta(hours=2)), phq9(9, MONDAY + timedelta(days=7))],
        OutcomeDefinition(),
        NEW_YORK,
        date(2026, 6, 1),
    )
    assert not running.ended and running.follow_ups == ()
    assert running.results[Instrument.phq9].responded is True
    undosed = judge_course(
        record(status=CourseStatus.discontinued, doses=(), end_reason="cost"),
        [phq9(20, MONDAY - timedelta(hours=2))],
        OutcomeDefinition(),
        NEW_YORK,
        date(2026, 6, 1),
    )
    assert undosed.results[Instrument.phq9].responded is None and undosed.follow_ups == ()
