"""Response, remission, a course's trajectory and its follow-ups: pure rules, with worked examples."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from services.outcomes.domain.definitions import OutcomeDefinition, site_definition
from services.outcomes.domain.followups import (
    FollowUpStatus,
    follow_up_points,
    follow_up_results,
    follow_up_status,
)
from services.outcomes.domain.trajectory import Measurement, Phase, course_result
from shared.instruments.scoring import Instrument
from shared.measures.models import MeasureContext

NEW_YORK = ZoneInfo("America/New_York")
DEFAULTS = OutcomeDefinition()


# --- definitions ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("baseline", "score", "responded"),
    [
        (20, 10, True),  # exactly 50 %: a response [ACNP 2006]
        (20, 11, False),  # 45 %
        (21, 10, True),  # 52.4 %
        (21, 11, False),  # 47.6 %: whole points, no rounding up
        (15, 7, True),  # GAD-7 15 to 7: 53 %
        (10, 12, False),  # worse
        (5, 2, True),  # the lowest baseline judged: PHQ-9 5, mild [Kroenke 2001]
        (4, 0, None),  # began in the minimal range: nothing to respond from, not judged
        (0, 0, None),
    ],
)
def test_response_is_a_fall_of_at_least_half_from_baseline(baseline: int, score: int, responded: bool | None) -> None:
    assert DEFAULTS.responded(Instrument.phq9, baseline, score) is responded
    # The line the patient's chart draws says the same: a score at or below it responds.
    line = DEFAULTS.response_line(Instrument.phq9, baseline)
    assert (None if line is None else score <= line) is responded


@pytest.mark.parametrize(
    ("instrument", "score", "remitted"),
    [
        (Instrument.phq9, 4, True),  # 0-4 minimal [Kroenke 2001]
        (Instrument.phq9, 5, False),
        (Instrument.gad7, 4, True),  # 0-4 minimal [Spitzer 2006]
        (Instrument.gad7, 5, False),
        (Instrument.pcl5, 32, True),  # below 33, the site's default cutoff [NCPTSD]
        (Instrument.pcl5, 33, False),
    ],
)
def test_remission_is_below_each_instruments_cutoff(instrument: Instrument, score: int, remitted: bool) -> None:
    assert DEFAULTS.remitted(instrument, 40, score) is remitted


def test_a_course_that_began_below_the_cutoff_is_not_judged_on_that_instrument() -> None:
    # A depression course's PCL-5 of 12 falling to 5 is no PTSD remission, nor a response (found in review).
    assert DEFAULTS.remitted(Instrument.pcl5, 12, 5) is None
    assert DEFAULTS.responded(Instrument.pcl5, 12, 5) is None
    assert DEFAULTS.remitted(Instrument.pcl5, 33, 32) is True  # at the cutoff: probable PTSD at baseline


def test_a_definition_names_itself_and_a_site_cutoff_changes_the_name() -> None:
    assert DEFAULTS.key == "response>=50%;phq9<5;gad7<5;pcl5<33"
    assert site_definition(31).key == "response>=50%;phq9<5;gad7<5;pcl5<31"
    assert site_definition(31).remitted(Instrument.pcl5, 40, 31) is False
    with pytest.raises(ValueError, match="out of range"):
        site_definition(81)
    with pytest.raises(ValidationError):
        OutcomeDefinition(response_reduction_percent=0)


# --- a course's trajectory --------------------------------------------------------------------------------------

FIRST_DOSE = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # 10:00 in New York
ENDED = datetime(2026, 3, 21, 16, 0, tzinfo=UTC)


def phq9(total: int, at: datetime, context: MeasureContext = MeasureContext.in_course) -> Measurement:
    return Measurement(
        assessment_id=uuid.uuid4(), instrument=Instrument.phq9, total=total, context=context, administered_at=at
    )


SCORES = [
    phq9(22, datetime(2026, 2, 20, 16, tzinfo=UTC), MeasureContext.baseline),  # at intake
    phq9(21, FIRST_DOSE - timedelta(minutes=30), MeasureContext.pre_session),  # before the first dose
    phq9(14, FIRST_DOSE + timedelta(hours=4)),  # the same day: 33 %
    phq9(10, datetime(2026, 3, 3, 14, 0, tzinfo=UTC)),  # 52 %: the first response, 23 h after the dose
    phq9(6, datetime(2026, 3, 20, 15, 0, tzinfo=UTC)),  # the last in the course
    phq9(9, datetime(2026, 4, 18, 15, 0, tzinfo=UTC), MeasureContext.follow_up),  # 4 weeks after the end
    phq9(13, datetime(2026, 6, 10, 15, 0, tzinfo=UTC), MeasureContext.follow_up),  # 12 weeks
]


def test_a_course_is_judged_from_the_last_score_before_the_first_dose_to_its_last_score_in_the_course() -> None:
    result = course_result(
        Instrument.phq9, SCORES, first_dose_at=FIRST_DOSE, ended_at=ENDED, definition=DEFAULTS, zone=NEW_YORK
    )
    assert (result.baseline, result.last_in_course, result.change) == (21, 6, -15)
    assert (result.responded, result.remitted) == (True, False)  # 6 is not below 5
    assert result.time_to_response is not None
    assert (result.time_to_response.hours, result.time_to_response.days) == (23.0, 1)
    assert [p.phase for p in result.points] == [
        Phase.earlier,
        Phase.baseline,
        Phase.in_course,
        Phase.in_course,
        Phase.in_course,
        Phase.follow_up,
        Phase.follow_up,
    ]
    same_day = result.points[2]
    assert (same_day.hours_from_first_dose, same_day.change, same_day.percent_change) == (4.0, -7, -33.3)
    assert same_day.responded is False and result.points[3].responded is True
    assert result.definition == DEFAULTS.key


def test_a_course_not_dosed_yet_has_a_baseline_and_no_result() -> None:
    result = course_result(
        Instrument.phq9, SCORES[:2], first_dose_at=None, ended_at=None, definition=DEFAULTS, zone=NEW_YORK
    )
    assert (result.baseline, result.responded, result.time_to_response) == (21, None, None)


def test_without_a_baseline_nothing_is_judged() -> None:
    after = [s for s in SCORES if s.administered_at > FIRST_DOSE]
    result = course_result(
        Instrument.phq9, after, first_dose_at=FIRST_DOSE, ended_at=ENDED, definition=DEFAULTS, zone=NEW_YORK
    )
    assert (result.baseline, result.responded, result.remitted, result.time_to_response) == (None, None, None, None)
    assert {p.phase for p in result.points} == {Phase.earlier}


def test_a_response_on_the_evening_of_the_dose_is_day_0_on_the_sites_calendar() -> None:
    # 23:30 in New York on 2 March is 04:30 UTC on 3 March: still the dose's day at the site.
    evening = phq9(9, datetime(2026, 3, 3, 4, 30, tzinfo=UTC))
    result = course_result(
        Instrument.phq9,
        [SCORES[1], evening],
        first_dose_at=FIRST_DOSE,
        ended_at=None,
        definition=DEFAULTS,
        zone=NEW_YORK,
    )
    assert result.time_to_response is not None
    assert (result.time_to_response.hours, result.time_to_response.days) == (13.5, 0)


# --- follow-ups -------------------------------------------------------------------------------------------------


def test_follow_ups_fall_due_4_12_and_26_weeks_after_the_last_day_with_their_windows() -> None:
    points = follow_up_points(date(2026, 3, 21))
    assert [(p.week, p.due_on, p.opens_on, p.closes_on) for p in points] == [
        (4, date(2026, 4, 18), date(2026, 4, 11), date(2026, 4, 25)),
        (12, date(2026, 6, 13), date(2026, 5, 30), date(2026, 6, 27)),
        (26, date(2026, 9, 19), date(2026, 8, 22), date(2026, 10, 17)),
    ]


@pytest.mark.parametrize(
    ("today", "scored", "status"),
    [
        (date(2026, 4, 10), False, FollowUpStatus.upcoming),
        (date(2026, 4, 11), False, FollowUpStatus.due),
        (date(2026, 4, 25), False, FollowUpStatus.due),
        (date(2026, 4, 26), False, FollowUpStatus.missed),
        (date(2026, 4, 12), True, FollowUpStatus.done),
    ],
)
def test_a_follow_ups_status(today: date, scored: bool, status: FollowUpStatus) -> None:
    assert follow_up_status(follow_up_points(date(2026, 3, 21))[0], scored, today) is status


def test_the_response_held_at_4_weeks_and_was_lost_at_12() -> None:
    results = follow_up_results(
        Instrument.phq9,
        SCORES,
        course_ended_on=date(2026, 3, 21),
        baseline=21,
        course_responded=True,
        definition=DEFAULTS,
        today=date(2026, 11, 1),
        zone=NEW_YORK,
    )
    assert [(r.week, r.status, r.score, r.held) for r in results] == [
        (4, FollowUpStatus.done, 9, True),  # 21 to 9: 57 %
        (12, FollowUpStatus.done, 13, False),  # 21 to 13: 38 %
        (26, FollowUpStatus.missed, None, None),
    ]


def test_nothing_holds_when_the_course_did_not_respond() -> None:
    results = follow_up_results(
        Instrument.phq9,
        SCORES,
        course_ended_on=date(2026, 3, 21),
        baseline=21,
        course_responded=False,
        definition=DEFAULTS,
        today=date(2026, 6, 30),
        zone=NEW_YORK,
    )
    assert [(r.responded, r.held) for r in results] == [(True, None), (False, None), (None, None)]
    assert [r.status for r in results] == [FollowUpStatus.done, FollowUpStatus.done, FollowUpStatus.upcoming]
