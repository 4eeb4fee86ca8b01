"""Cohort aggregates: what a site's courses came to, grouped as site x indication x route x month (the month the
course was planned, on the site's calendar: fixed for the course's life, so a cohort's counts only grow and no
course moves between cohorts from one release to the next), overall and within each cut. The only thing outcomes
publishes beyond the site, so each figure is made safe here:

- every count from 1 to 10 is suppressed (shared/privacy.py, the CMS cell-size rule);
- a mean or a median only over 11 or more courses, never over fewer;
- a rate only when both its counts are shown.

- within one aggregate, a count that is part of a shown whole (started of courses, responded of those with a
  result, ...) is hidden too when the rest of the whole is 1-10, so no small count is had by subtraction
  (shared/privacy.py's complementary rule, applied to the aggregate's nesting; found in review).

Complementary suppression across cuts and releases, the release cadence and the step rule are the release
rules' (shared/privacy/release.py); here every count is suppressed on its own raw value before anything else.

Figures, per cohort:
- courses (in the month of their planning: a course deferred or declined for cost still counts), started
  (dosed), completed, dropped out (discontinued after a dose);
- per instrument: courses with a result (a baseline and a score in the course), responded, remitted, the mean
  and median change from baseline, the median time to response (hours and site days, over responders);
- per adverse-event type: courses with at least one, per 100 courses, and courses with a serious one;
- per access-barrier reason: courses with one, the median of their highest estimated out-of-pocket cost;
- the median days from registration to the first dose.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import get_args
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from services.outcomes.domain.course_summary import CourseSummary
from services.outcomes.domain.registrations import month_of
from services.outcomes.domain.trajectory import CourseResult
from shared.events.billing import AccessBarrierReason
from shared.events.outcomes import (
    AdverseEventFigures,
    BarrierFigures,
    CohortCut,
    CohortOutcomesPublished,
    InstrumentFigures,
    ReleasedCount,
)
from shared.instants import local_date
from shared.instruments.scoring import Instrument
from shared.privacy import SMALLEST_SHOWN_COUNT, is_small
from shared.treatment import AdverseEventType, CourseStatus, Indication, Route

BARRIER_REASONS: tuple[AccessBarrierReason, ...] = get_args(AccessBarrierReason)


class CourseOutcome(BaseModel):
    """One course as the cohorts see it: what it was, and each instrument's result."""

    model_config = ConfigDict(frozen=True)

    indication: Indication
    route: Route
    status: CourseStatus
    planned_at: datetime
    summary: CourseSummary
    results: dict[Instrument, CourseResult]


class CohortKey(BaseModel):
    model_config = ConfigDict(frozen=True)

    indication: Indication
    route: Route
    period: str
    cut: CohortCut
    cut_value: str


CUTS: dict[CohortCut, Callable[[CourseSummary], str | None]] = {
    "age_band": lambda s: s.age_band.value if s.age_band else None,
    "dose_band": lambda s: s.dose_band.value if s.dose_band else None,
    "frequency": lambda s: s.frequency.value if s.frequency else None,
    "payer": lambda s: s.payer.value,
    "prior_trials": lambda s: s.prior_trials.value,
}


def cohort_keys(course: CourseOutcome, zone: ZoneInfo) -> list[CohortKey]:
    """Every cohort the course belongs to: the whole cohort and one value of each cut it has, in the month it
    was planned (a course deferred or declined for cost is counted)."""
    period = month_of(local_date(course.planned_at, zone))
    keys = [CohortKey(indication=course.indication, route=course.route, period=period, cut="all", cut_value="all")]
    for cut, value_of in CUTS.items():
        value = value_of(course.summary)
        if value is not None:
            keys.append(
                CohortKey(indication=course.indication, route=course.route, period=period, cut=cut, cut_value=value)
            )
    return keys


def released(count: int) -> ReleasedCount:
    return ReleasedCount(suppressed=True) if is_small(count) else ReleasedCount(count=count)


def released_part(part: int, whole: int, whole_released: ReleasedCount) -> ReleasedCount:
    """A count within a whole: hidden when it is 1-10, or when the whole is shown and the rest of it is 1-10
    (shown 20 courses and 14 started would show 6 never dosed)."""
    if is_small(part) or (whole_released.count is not None and is_small(whole - part)):
        return ReleasedCount(suppressed=True)
    return ReleasedCount(count=part)


def _mean(values: Sequence[float]) -> float | None:
    return round(statistics.fmean(values), 2) if len(values) >= SMALLEST_SHOWN_COUNT else None


def _median(values: Sequence[float]) -> float | None:
    return round(float(statistics.median(values)), 2) if len(values) >= SMALLEST_SHOWN_COUNT else None


def _per_100(part: ReleasedCount, whole: ReleasedCount) -> float | None:
    if part.count is None or not whole.count:
        return None
    return round(part.count * 100 / whole.count, 1)


def instrument_figures(
    instrument: Instrument, courses: Sequence[CourseOutcome], started: ReleasedCount
) -> InstrumentFigures:
    """``courses`` are the dosed ones, ``started`` their released count."""
    results = [c.results[instrument] for c in courses if instrument in c.results]
    judged = [r for r in results if r.responded is not None]
    changes = [float(r.change) for r in judged if r.change is not None]
    responders = [r for r in judged if r.responded]
    hours = [r.time_to_response.hours for r in responders if r.time_to_response]
    days = [float(r.time_to_response.days) for r in responders if r.time_to_response]
    with_result = released_part(len(judged), len(courses), started)
    responders_shown = released_part(len(responders), len(judged), with_result)
    return InstrumentFigures(
        instrument=instrument.value,
        with_result=with_result,
        responded=responders_shown,
        remitted=released_part(sum(bool(r.remitted) for r in judged), len(judged), with_result),
        # Only over a shown count: a figure over a hidden one is refused by the network (shared/events/outcomes).
        mean_change=_mean(changes) if with_result.count is not None else None,
        median_change=_median(changes) if with_result.count is not None else None,
        median_hours_to_response=_median(hours) if responders_shown.count is not None else None,
        median_days_to_response=_median(days) if responders_shown.count is not None else None,
    )


def aggregate(
    site: str, key: CohortKey, courses: Sequence[CourseOutcome], definition: str, generated_at: datetime
) -> CohortOutcomesPublished:
    dosed = [c for c in courses if c.summary.first_dose_at is not None]
    in_cohort = released(len(courses))
    started = released_part(len(dosed), len(courses), in_cohort)
    adverse = []
    for kind in AdverseEventType:
        had_it = sum(kind in c.summary.adverse_events_by_type for c in dosed)
        with_it = released_part(had_it, len(dosed), started)
        serious = released_part(sum(kind in c.summary.serious_adverse_events_by_type for c in dosed), had_it, with_it)
        adverse.append(
            AdverseEventFigures(
                type=kind, courses=with_it, per_100_courses=_per_100(with_it, started), serious_courses=serious
            )
        )
    barriers = []
    for reason in BARRIER_REASONS:
        hit = [c for c in courses if reason in c.summary.barriers_by_reason]
        costs = [float(c.summary.estimated_out_of_pocket_cents) for c in hit if c.summary.estimated_out_of_pocket_cents]
        hit_shown = released_part(len(hit), len(courses), in_cohort)
        median_cost = _median(costs) if hit_shown.count is not None else None
        barriers.append(
            BarrierFigures(
                reason=reason,
                courses=hit_shown,
                median_out_of_pocket_cents=round(median_cost) if median_cost is not None else None,
            )
        )
    waits = [float(c.summary.days_to_first_dose) for c in dosed if c.summary.days_to_first_dose is not None]
    finished = sum(c.status is CourseStatus.completed for c in dosed)
    stopped = sum(c.summary.dropped_out for c in dosed)
    completed = released_part(finished, len(dosed), started)
    dropped_out = released_part(stopped, len(dosed), started)
    if None not in (started.count, completed.count, dropped_out.count) and is_small(len(dosed) - finished - stopped):
        # The courses still running would be had by subtracting both from started.
        dropped_out = ReleasedCount(suppressed=True)
    return CohortOutcomesPublished(
        site=site,
        indication=key.indication,
        route=key.route,
        period=key.period,
        cut=key.cut,
        cut_value=key.cut_value,
        definition=definition,
        courses=in_cohort,
        started=started,
        completed=completed,
        dropped_out=dropped_out,
        instruments=[instrument_figures(i, dosed, started) for i in Instrument],
        adverse_events=adverse,
        barriers=barriers,
        median_days_to_first_dose=_median(waits) if started.count is not None else None,
        generated_at=generated_at,
    )


def cohort_aggregates(
    site: str, courses: Sequence[CourseOutcome], definition: str, zone: ZoneInfo, generated_at: datetime
) -> list[CohortOutcomesPublished]:
    """Every cohort of the site's courses, in a stable order."""
    grouped = cohorts_of(courses, zone)
    ordered = sorted(grouped.items(), key=lambda item: tuple(item[0].model_dump(mode="json").values()))
    return [aggregate(site, key, members, definition, generated_at) for key, members in ordered]


def course_counts(courses: Sequence[CourseOutcome]) -> dict[str, int]:
    """Every count of a cohort on its raw values, by the measure names of shared/privacy/cells.py (for the
    differential-privacy mode, which adds noise to raw counts before anything is suppressed)."""
    dosed = [c for c in courses if c.summary.first_dose_at is not None]
    counts = {
        "courses": len(courses),
        "started": len(dosed),
        "completed": sum(c.status is CourseStatus.completed for c in dosed),
        "dropped_out": sum(c.summary.dropped_out for c in dosed),
    }
    for instrument in Instrument:
        judged = [r for c in dosed if (r := c.results.get(instrument)) is not None and r.responded is not None]
        counts[f"{instrument.value}.with_result"] = len(judged)
        counts[f"{instrument.value}.responded"] = sum(bool(r.responded) for r in judged)
        counts[f"{instrument.value}.remitted"] = sum(bool(r.remitted) for r in judged)
    for kind in AdverseEventType:
        counts[f"adverse.{kind.value}.courses"] = sum(kind in c.summary.adverse_events_by_type for c in dosed)
        counts[f"adverse.{kind.value}.serious"] = sum(kind in c.summary.serious_adverse_events_by_type for c in dosed)
    for reason in BARRIER_REASONS:
        counts[f"barrier.{reason}.courses"] = sum(reason in c.summary.barriers_by_reason for c in courses)
    return counts


# One course adds at most 1 to each count of its cohort: the L1 sensitivity of a cohort's counts to one course.
COUNTS_PER_COHORT = 4 + 3 * len(Instrument) + 2 * len(AdverseEventType) + len(BARRIER_REASONS)


def figures_from_counts(
    site: str, key: CohortKey, counts: Mapping[str, ReleasedCount], definition: str, generated_at: datetime
) -> CohortOutcomesPublished:
    """A cohort's figures from released counts only (the differential-privacy mode): no mean or median, whose
    noise this mode does not budget for; rates from the released counts."""
    started = counts["started"]
    return CohortOutcomesPublished(
        site=site,
        indication=key.indication,
        route=key.route,
        period=key.period,
        cut=key.cut,
        cut_value=key.cut_value,
        definition=definition,
        courses=counts["courses"],
        started=started,
        completed=counts["completed"],
        dropped_out=counts["dropped_out"],
        instruments=[
            InstrumentFigures(
                instrument=i.value,
                with_result=counts[f"{i.value}.with_result"],
                responded=counts[f"{i.value}.responded"],
                remitted=counts[f"{i.value}.remitted"],
            )
            for i in Instrument
        ],
        adverse_events=[
            AdverseEventFigures(
                type=kind,
                courses=counts[f"adverse.{kind.value}.courses"],
                per_100_courses=_per_100(counts[f"adverse.{kind.value}.courses"], started),
                serious_courses=counts[f"adverse.{kind.value}.serious"],
            )
            for kind in AdverseEventType
        ],
        barriers=[BarrierFigures(reason=r, courses=counts[f"barrier.{r}.courses"]) for r in BARRIER_REASONS],
        generated_at=generated_at,
    )


def cohorts_of(courses: Sequence[CourseOutcome], zone: ZoneInfo) -> dict[CohortKey, list[CourseOutcome]]:
    """The courses of every cohort."""
    grouped: dict[CohortKey, list[CourseOutcome]] = {}
    for course in courses:
        for key in cohort_keys(course, zone):
            grouped.setdefault(key, []).append(course)
    return grouped
