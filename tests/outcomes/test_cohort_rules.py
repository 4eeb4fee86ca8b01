"""A course's summary and bands, and the cohort aggregates built from many: pure rules."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from services.outcomes.domain.cohorts import (
    CourseOutcome,
    aggregate,
    cohort_aggregates,
    cohort_keys,
    released,
    released_part,
)
from services.outcomes.domain.course_summary import (
    AdverseEventSeen,
    AgeBand,
    BarrierSeen,
    CourseFacts,
    DoseBand,
    DoseGiven,
    Frequency,
    PayerGroup,
    PriorTrials,
    age_band,
    dose_band,
    frequency,
    prior_trials_band,
    summarise,
)
from services.outcomes.domain.definitions import OutcomeDefinition
from services.outcomes.domain.trajectory import Measurement, course_result
from shared.events.outcomes import BarrierFigures, InstrumentFigures, ReleasedCount
from shared.instruments.scoring import Instrument
from shared.measures.models import MeasureContext
from shared.treatment import AdverseEventType, CourseStatus, Indication, Route, VitalsAlertCode

NEW_YORK = ZoneInfo("America/New_York")
MONDAY = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


# --- bands ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "band"),
    [
        (17, AgeBand.under_18),
        (18, AgeBand.age_18_24),
        (24, AgeBand.age_18_24),
        (25, AgeBand.age_25_34),
        (34, AgeBand.age_25_34),
        (35, AgeBand.age_35_44),
        (74, AgeBand.age_65_74),
        (75, AgeBand.age_75_89),
        (89, AgeBand.age_75_89),
        (90, AgeBand.age_90_and_over),  # HIPAA Safe Harbor: over 89 is one group
        (104, AgeBand.age_90_and_over),
    ],
)
def test_age_bands(age: int, band: AgeBand) -> None:
    on = date(2026, 3, 2)
    assert age_band(date(on.year - age, 3, 2), on) is band


def test_the_day_before_the_25th_birthday_is_still_18_to_24() -> None:
    assert age_band(date(2001, 3, 3), date(2026, 3, 2)) is AgeBand.age_18_24
    assert age_band(date(2001, 3, 2), date(2026, 3, 2)) is AgeBand.age_25_34


def dose(route: Route, at: datetime, mg: float, per_kg: float | None = None) -> DoseGiven:
    return DoseGiven(route=route, dose_mg=mg, mg_per_kg=per_kg, at=at)


@pytest.mark.parametrize(
    ("route", "doses", "band"),
    [
        (Route.iv_infusion, [(40, 0.5)], DoseBand.from_0_5_mg_per_kg),
        (Route.iv_infusion, [(32, 0.4), (32, 0.4), (48, 0.6)], DoseBand.below_0_5_mg_per_kg),  # median 0.4
        (Route.iv_infusion, [(60, 0.75)], DoseBand.from_0_75_mg_per_kg),
        (Route.intramuscular, [(59.2, 0.74)], DoseBand.from_0_5_mg_per_kg),
        (Route.intranasal_esketamine, [(56, None), (56, None), (84, None)], DoseBand.esketamine_56_mg),
        (Route.intranasal_esketamine, [(84, None), (84, None)], DoseBand.esketamine_84_mg),
        (Route.intranasal_esketamine, [(28, None)], DoseBand.esketamine_28_mg),
        (Route.sublingual_oral, [(150, None)], DoseBand.below_200_mg),
        (Route.sublingual_oral, [(300, None)], DoseBand.from_200_mg),
    ],
)
def test_dose_band_of_the_median_dose(route: Route, doses: list[tuple[float, float | None]], band: DoseBand) -> None:
    given = [dose(route, MONDAY + timedelta(days=3 * n), mg, kg) for n, (mg, kg) in enumerate(doses)]
    assert dose_band(route, given) is band


def test_no_dose_no_band() -> None:
    assert dose_band(Route.iv_infusion, []) is None and frequency([]) is None


@pytest.mark.parametrize(
    ("offsets_days", "expected"),
    [
        ([0], Frequency.single_dose),
        ([0, 3, 7, 10, 14, 17], Frequency.twice_weekly_or_more),  # Monday and Thursday for three weeks
        ([0, 7, 14, 21], Frequency.weekly),
        ([0, 21], Frequency.under_weekly),
    ],
)
def test_frequency_from_the_span_of_the_doses(offsets_days: list[int], expected: Frequency) -> None:
    doses = [dose(Route.iv_infusion, MONDAY + timedelta(days=d), 40, 0.5) for d in offsets_days]
    assert frequency(doses) is expected


@pytest.mark.parametrize(("trials", "band"), [(0, "0"), (1, "1"), (2, "2"), (3, "3+"), (7, "3+")])
def test_prior_trial_bands(trials: int, band: str) -> None:
    assert prior_trials_band(trials) is PriorTrials(band)


# --- a course's summary -----------------------------------------------------------------------------------------


def facts(**changes: object) -> CourseFacts:
    base: dict[str, object] = {
        "route": Route.iv_infusion,
        "status": CourseStatus.completed,
        "end_reason": None,
        "planned_at": MONDAY - timedelta(days=10),
        "ended_at": MONDAY + timedelta(days=20),
        "registered_at": MONDAY - timedelta(days=30, hours=2),
        "birth_date": date(1980, 6, 1),
        "payer": PayerGroup.self_pay,
        "failed_trials": 2,
        "doses": tuple(dose(Route.iv_infusion, MONDAY + timedelta(days=d), 40, 0.5) for d in (0, 3, 7, 10, 14, 17)),
        "adverse_events": (
            AdverseEventSeen(type=AdverseEventType.nausea, serious=False),
            AdverseEventSeen(type=AdverseEventType.nausea, serious=False),
            AdverseEventSeen(type=AdverseEventType.hypertension, serious=True),
        ),
        "vitals_alerts": (VitalsAlertCode.systolic_high, VitalsAlertCode.systolic_high, VitalsAlertCode.spo2_low),
        "safety_flags": 1,
        "barriers": (
            BarrierSeen(reason="high_out_of_pocket", outcome="deferred", estimated_out_of_pocket_cents=2400_00),
            BarrierSeen(reason="cannot_pay", outcome="deferred", estimated_out_of_pocket_cents=3600_00),
        ),
    }
    return CourseFacts.model_validate({**base, **changes})


def test_a_course_summary() -> None:
    summary = summarise(facts())
    assert (summary.dose_count, summary.dose_band, summary.frequency) == (
        6,
        DoseBand.from_0_5_mg_per_kg,
        Frequency.twice_weekly_or_more,
    )
    assert summary.doses_per_week == 2.06  # 5 intervals over 17 days
    assert (summary.age_band, summary.prior_trials, summary.payer) == (
        AgeBand.age_45_54,
        PriorTrials.two,
        PayerGroup.self_pay,
    )
    assert summary.adverse_events_by_type == {AdverseEventType.nausea: 2, AdverseEventType.hypertension: 1}
    assert summary.serious_adverse_events_by_type == {AdverseEventType.hypertension: 1}
    assert summary.vitals_alerts_by_code == {VitalsAlertCode.systolic_high: 2, VitalsAlertCode.spo2_low: 1}
    assert (summary.days_to_first_dose, summary.estimated_out_of_pocket_cents) == (30, 3600_00)
    assert (summary.dropped_out, summary.dropout_reason) == (False, None)


def test_a_discontinued_course_is_a_dropout_with_its_reason() -> None:
    summary = summarise(facts(status=CourseStatus.discontinued, end_reason="travel to the clinic too costly"))
    assert (summary.dropped_out, summary.dropout_reason) == (True, "travel to the clinic too costly")


# --- cohorts ----------------------------------------------------------------------------------------------------

DEFINITION = OutcomeDefinition()


def course(first_dose: datetime, baseline: int, last: int, **changes: object) -> CourseOutcome:
    doses = tuple(dose(Route.iv_infusion, first_dose + timedelta(days=d), 40, 0.5) for d in (0, 3, 7))
    summary = summarise(facts(doses=doses, **changes))
    scores = [
        Measurement(
            assessment_id=uuid.uuid4(),
            instrument=Instrument.phq9,
            total=baseline,
            context=MeasureContext.baseline,
            administered_at=first_dose - timedelta(days=2),
        ),
        Measurement(
            assessment_id=uuid.uuid4(),
            instrument=Instrument.phq9,
            total=last,
            context=MeasureContext.in_course,
            administered_at=first_dose + timedelta(days=8),
        ),
    ]
    result = course_result(
        Instrument.phq9, scores, first_dose_at=first_dose, ended_at=None, definition=DEFINITION, zone=NEW_YORK
    )
    return CourseOutcome(
        indication=Indication.treatment_resistant_depression,
        route=Route.iv_infusion,
        status=CourseStatus.completed,
        planned_at=first_dose - timedelta(days=10),
        summary=summary,
        results={Instrument.phq9: result},
    )


def test_a_course_belongs_to_the_month_it_was_planned_on_the_sites_calendar() -> None:
    # Planned ten days before its first dose: 03:00 UTC on 1 March is 22:00 on 28 February in New York. The
    # month is fixed for the course's life, so no course moves between cohorts from one release to the next.
    planned = course(datetime(2026, 3, 11, 3, 0, tzinfo=UTC), 20, 8)
    assert planned.planned_at == datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
    keys = cohort_keys(planned, NEW_YORK)
    assert {k.period for k in keys} == {"2026-02"}
    assert [(k.cut, k.cut_value) for k in keys] == [
        ("all", "all"),
        ("age_band", "45-54"),
        ("dose_band", "0.5-0.74 mg/kg"),
        ("frequency", ">=2/week"),
        ("payer", "self_pay"),
        ("prior_trials", "2"),
    ]


def test_released_counts_hide_1_to_10_and_the_network_refuses_them() -> None:
    assert [released(n) for n in (0, 1, 10, 11)] == [
        ReleasedCount(count=0),
        ReleasedCount(suppressed=True),
        ReleasedCount(suppressed=True),
        ReleasedCount(count=11),
    ]
    with pytest.raises(ValidationError, match="1-10"):
        ReleasedCount(count=7)


def test_eleven_courses_show_their_figures_and_ten_do_not() -> None:
    start = datetime(2026, 3, 12, 15, 0, tzinfo=UTC)  # planned on 2 March
    # Eleven courses: 20 to 8 (responded, -12) six times, 20 to 14 (not, -6) five times; none remitted.
    eleven = [course(start + timedelta(hours=n), 20, 8 if n < 6 else 14) for n in range(11)]
    [whole] = [a for a in cohort_aggregates("north", eleven, DEFINITION.key, NEW_YORK, start) if a.cut == "all"]
    assert (whole.period, whole.started.count, whole.completed.count, whole.dropped_out.count) == ("2026-03", 11, 11, 0)
    phq9 = next(i for i in whole.instruments if i.instrument == "phq9")
    assert (phq9.with_result.count, phq9.responded.suppressed, phq9.remitted.count) == (11, True, 0)  # 6 responders
    assert (phq9.mean_change, phq9.median_change) == (-9.27, -12.0)
    assert phq9.median_hours_to_response is None, "six responders: too few for a median"
    nausea = next(a for a in whole.adverse_events if a.type is AdverseEventType.nausea)
    assert (nausea.courses.count, nausea.per_100_courses) == (11, 100.0)
    hypertension = next(a for a in whole.adverse_events if a.type is AdverseEventType.hypertension)
    assert hypertension.serious_courses.count == 11
    costly = next(b for b in whole.barriers if b.reason == "cannot_pay")
    assert (costly.courses.count, costly.median_out_of_pocket_cents) == (11, 3600_00)
    assert whole.median_days_to_first_dose == 40.0  # registered 30 days before MONDAY

    ten = aggregate("north", cohort_keys(eleven[0], NEW_YORK)[0], eleven[:10], DEFINITION.key, start)
    assert ten.started.suppressed and ten.completed.suppressed
    assert all(i.mean_change is None and i.median_change is None for i in ten.instruments)
    assert ten.median_days_to_first_dose is None
    assert all(a.per_100_courses is None for a in ten.adverse_events)


def test_a_course_never_dosed_counts_in_the_month_it_was_planned_but_is_not_started() -> None:
    summary = summarise(facts(doses=()))
    undosed = CourseOutcome(
        indication=Indication.depression,
        route=Route.iv_infusion,
        status=CourseStatus.on_hold,
        planned_at=datetime(2026, 1, 20, 15, tzinfo=UTC),
        summary=summary,
        results={},
    )
    [key, *_] = cohort_keys(undosed, NEW_YORK)
    assert (key.period, key.cut) == ("2026-01", "all")
    figures = aggregate("north", key, [undosed] * 11, DEFINITION.key, MONDAY)
    assert (figures.courses.count, figures.started.count) == (11, 0)
    assert next(b for b in figures.barriers if b.reason == "cannot_pay").courses.count == 11


def test_a_part_of_a_shown_whole_is_hidden_when_the_rest_of_the_whole_is_small() -> None:
    shown_20, hidden = released(20), ReleasedCount(suppressed=True)
    assert released_part(14, 20, shown_20) == hidden  # 20 - 14 = 6 would be had by subtraction
    assert released_part(20, 20, shown_20) == ReleasedCount(count=20)  # the rest is 0: nothing small
    assert released_part(11, 22, released(22)) == ReleasedCount(count=11)
    assert released_part(12, 20, hidden) == ReleasedCount(count=12)  # the whole hidden: nothing to subtract from
    assert released_part(5, 40, released(40)) == hidden


def test_no_count_of_an_aggregate_is_had_by_subtracting_two_shown_ones() -> None:
    # 20 courses started, 14 of them responded: non-responders (6) must not be had by subtraction.
    responders = [course(MONDAY + timedelta(days=n), 20, 8) for n in range(14)]
    others = [course(MONDAY + timedelta(days=n), 20, 16) for n in range(6)]
    figures = aggregate("north", cohort_keys(responders[0], NEW_YORK)[0], responders + others, DEFINITION.key, MONDAY)
    phq9 = next(i for i in figures.instruments if i.instrument == "phq9")
    assert (figures.started.count, phq9.with_result.count) == (20, 20)
    assert phq9.responded.suppressed
    shown = [figures.courses, figures.started, figures.completed, figures.dropped_out]
    shown += [c for i in figures.instruments for c in (i.with_result, i.responded, i.remitted)]
    pairs = [(a.count, b.count) for a in shown for b in shown if a.count is not None and b.count is not None]
    assert all(not (0 < whole - part < 11) for whole, part in pairs), "a small difference between shown counts"


def test_the_network_model_refuses_a_mean_or_median_over_a_hidden_count() -> None:
    hidden, shown = ReleasedCount(suppressed=True), ReleasedCount(count=12)
    with pytest.raises(ValidationError, match="only stand over a shown count"):
        InstrumentFigures(instrument="phq9", with_result=hidden, responded=hidden, remitted=hidden, mean_change=-6.0)
    with pytest.raises(ValidationError, match="only stand over a shown count"):
        InstrumentFigures(
            instrument="phq9", with_result=shown, responded=hidden, remitted=hidden, median_hours_to_response=30.0
        )
    with pytest.raises(ValidationError, match="only stand over a shown count"):
        BarrierFigures(reason="cannot_pay", courses=hidden, median_out_of_pocket_cents=50_000)
    assert InstrumentFigures(instrument="phq9", with_result=shown, responded=hidden, remitted=hidden, mean_change=-6.0)
