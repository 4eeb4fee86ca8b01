"""A course judged as a whole (the chart and the cohorts from one call), and which course a flag or a barrier
that names none belongs to: pure rules."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from services.outcomes.domain.course_record import (
    CourseRecord,
    course_of_barrier,
    flag_in_course,
    judge_course,
    judge_patient_courses,
    next_course_begins,
)
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


def test_a_second_course_scores_are_its_own_not_the_first_ones_follow_ups_or_result() -> None:
    # Course A: six doses from MONDAY, ended 20 days later. Course B: first dose 30 days after A's end, before
    # A's 12-week follow-up; its scores must not fill A's follow-ups.
    patient_id = uuid.uuid4()
    first = record()
    second_start = MONDAY + timedelta(days=50)
    second = CourseRecord(
        course_id=uuid.uuid4(),
        patient_id=patient_id,
        indication=Indication.depression,
        facts=facts(
            planned_at=second_start - timedelta(days=5),
            ended_at=None,
            status=CourseStatus.active,
            doses=tuple(d.model_copy(update={"at": second_start + (d.at - MONDAY)}) for d in facts().doses),
        ),
    )
    first = first.model_copy(update={"patient_id": patient_id})
    scores = [
        phq9(20, MONDAY - timedelta(hours=2)),
        phq9(9, MONDAY + timedelta(days=19)),  # A responded
        phq9(18, second_start - timedelta(hours=1)),  # relapse: B's baseline
        phq9(8, second_start + timedelta(days=10)),  # B in course; near A's 12-week day (due day 104)
        phq9(7, MONDAY + timedelta(days=20 + 84)),  # inside A's 12-week window, but during B
    ]
    a, b = judge_patient_courses([first, second], scores, OutcomeDefinition(), NEW_YORK, date(2026, 12, 1))
    weeks = {f.week: f for f in a.follow_ups if f.instrument is Instrument.phq9}
    # The score taken just before B began falls in A's 4-week window: A's response did not hold (a relapse).
    assert (weeks[4].status, weeks[4].score, weeks[4].held) == (FollowUpStatus.done, 18, False)
    assert weeks[12].status is FollowUpStatus.missed and weeks[12].held is None  # B's scores are B's
    assert a.results[Instrument.phq9].last_in_course == 9
    b_result = b.results[Instrument.phq9]
    assert (b_result.baseline, b_result.last_in_course) == (18, 7)
    assert next_course_begins(first, [first, second]) == second_start
    assert next_course_begins(second, [first, second]) is None


def test_a_course_left_on_hold_does_not_take_the_next_courses_result() -> None:
    patient_id = uuid.uuid4()
    held = record(status=CourseStatus.on_hold, ended_at=None).model_copy(update={"patient_id": patient_id})
    later_start = MONDAY + timedelta(days=60)
    later = CourseRecord(
        course_id=uuid.uuid4(),
        patient_id=patient_id,
        indication=Indication.depression,
        facts=facts(
            planned_at=later_start - timedelta(days=3),
            doses=tuple(d.model_copy(update={"at": later_start + (d.at - MONDAY)}) for d in facts().doses),
        ),
    )
    scores = [
        phq9(20, MONDAY - timedelta(hours=2)),
        phq9(16, MONDAY + timedelta(days=10)),
        phq9(19, later_start - timedelta(hours=2)),
        phq9(4, later_start + timedelta(days=15)),
    ]
    h, _ = judge_patient_courses([held, later], scores, OutcomeDefinition(), NEW_YORK, date(2026, 12, 1))
    result = h.results[Instrument.phq9]
    # Its last score is the one before the next course began, never that course's 4.
    assert (result.last_in_course, result.responded, result.time_to_response) == (19, False, None)
