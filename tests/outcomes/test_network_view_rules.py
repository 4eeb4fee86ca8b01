"""The network's view of the sites' cohort outcomes (services/outcomes/domain/network_view.py): the latest
publication wins, sums across sites are upper bounds on patients, a suppressed count is never read as 0, and
trends go month by month."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.outcomes.domain.network_view import (
    SummingMixedCuts,
    TotalStatus,
    cohort_id,
    replaces,
    sum_across_sites,
    totals,
    trend,
)
from shared.events.outcomes import (
    AdverseEventFigures,
    CohortOutcomesPublished,
    InstrumentFigures,
    ReleasedCount,
)
from shared.treatment import AdverseEventType, Indication, Route

SUPPRESSED = ReleasedCount(suppressed=True)


def shown(n: int) -> ReleasedCount:
    return ReleasedCount(count=n)


def count(value: int | None) -> ReleasedCount:
    return SUPPRESSED if value is None else shown(value)


def cohort(
    site: str = "north",
    period: str = "2026-01",
    *,
    courses: int | None = 40,
    started: int | None = 30,
    with_result: int | None = 20,
    responded: int | None = 12,
    remitted: int | None = 0,
    cut: str = "all",
    cut_value: str = "all",
    indication: Indication = Indication.treatment_resistant_depression,
    route: Route = Route.iv_infusion,
    generated_at: datetime = datetime(2026, 2, 1, tzinfo=UTC),
    **more: Any,
) -> CohortOutcomesPublished:
    """A site's published cohort: counts are None for suppressed."""
    return CohortOutcomesPublished(
        site=site,
        indication=indication,
        route=route,
        period=period,
        cut=cut,  # type: ignore[arg-type]
        cut_value=cut_value,
        definition="response>=50%;phq9<5;gad7<5;pcl5<33",
        courses=count(courses),
        started=count(started),
        completed=count(more.pop("completed", started)),
        dropped_out=count(more.pop("dropped_out", 0)),
        instruments=[
            InstrumentFigures(
                instrument="phq9",
                with_result=count(with_result),
                responded=count(responded),
                remitted=count(remitted),
            )
        ],
        adverse_events=[
            AdverseEventFigures(
                type=AdverseEventType.nausea, courses=count(more.pop("nausea", 0)), serious_courses=shown(0)
            )
        ],
        barriers=[],
        median_days_to_first_dose=more.pop("median_days_to_first_dose", None),
        generated_at=generated_at,
        **more,
    )


def test_a_newer_publication_replaces_and_an_older_one_does_not() -> None:
    january, february = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
    assert replaces(None, january)
    assert replaces(january, february)
    assert not replaces(february, january), "an older copy redelivered does not replace"
    # Sites stamp a release with its period: a second release of the same period comes later on the topic.
    assert replaces(february, february)


def test_a_complete_sum_is_an_upper_bound_on_patients() -> None:
    total = sum_across_sites([("north", shown(12)), ("south", shown(20)), ("east", shown(0))])
    assert (total.status, total.sum_of_shown, total.sites, total.cells_suppressed) == (TotalStatus.complete, 32, 3, 0)
    assert total.upper_bound and not total.lower_bound
    assert "upper bound" in total.explanation and "two sites" in total.explanation


def test_a_sum_over_a_suppressed_cell_is_the_shown_part_only_and_says_so() -> None:
    total = sum_across_sites([("north", shown(12)), ("south", SUPPRESSED), ("east", shown(15))])
    assert (total.status, total.sum_of_shown, total.cells, total.cells_suppressed) == (TotalStatus.partial, 27, 3, 1)
    assert total.lower_bound and not total.upper_bound, "a suppressed count is not 0: the real total is at least 27"
    assert "suppressed" in total.explanation and "at least" in total.explanation


def test_all_suppressed_shows_no_number_and_nothing_is_no_data() -> None:
    total = sum_across_sites([("north", SUPPRESSED), ("south", SUPPRESSED)])
    assert (total.status, total.sum_of_shown, total.upper_bound, total.lower_bound) == (
        TotalStatus.suppressed,
        None,
        False,
        False,
    )
    empty = sum_across_sites([])
    assert (empty.status, empty.sum_of_shown) == (TotalStatus.no_data, None)


def test_totals_across_sites_and_the_pooled_rates() -> None:
    result = totals([cohort("north", responded=12, with_result=20), cohort("south", responded=18, with_result=30)])
    assert result.sites == ["north", "south"]
    assert result.courses.sum_of_shown == 80 and result.courses.upper_bound
    [phq9] = result.instruments
    assert (phq9.with_result.sum_of_shown, phq9.responded.sum_of_shown) == (50, 30)
    assert phq9.response_rate == 0.6 and phq9.remission_rate == 0.0
    [nausea] = result.adverse_events
    assert nausea.courses.status is TotalStatus.complete


def test_no_rate_where_a_count_behind_it_is_suppressed() -> None:
    result = totals([cohort("north", responded=None), cohort("south", responded=18, with_result=30)])
    [phq9] = result.instruments
    assert phq9.responded.status is TotalStatus.partial and phq9.responded.sum_of_shown == 18
    assert phq9.response_rate is None, "a rate over the shown part would describe the larger sites only"
    assert phq9.remission_rate == 0.0


def test_cohorts_of_different_cuts_are_never_summed() -> None:
    with pytest.raises(SummingMixedCuts):
        totals([cohort("north"), cohort("north", cut="age_band", cut_value="25-34")])
    by_age = totals([cohort("north", cut="age_band", cut_value="25-34")], cut="age_band", cut_value="25-34")
    assert by_age.cut_value == "25-34"


def test_the_trend_goes_month_by_month_summed_across_sites() -> None:
    points = trend(
        [
            cohort("north", "2026-02", responded=15, with_result=20),
            cohort("north", "2026-01", responded=11, with_result=22),
            cohort("south", "2026-01", responded=None),
        ],
        instrument="phq9",
    )
    assert [p.period for p in points] == ["2026-01", "2026-02"]
    january, february = (p.totals for p in points)
    assert january.sites == ["north", "south"] and january.instruments[0].response_rate is None
    assert january.instruments[0].responded.sum_of_shown == 11
    assert february.instruments[0].response_rate == 0.75
    assert trend([cohort()], instrument="gad7")[0].totals.instruments == []


def test_a_cohort_id_is_a_short_stable_fhir_safe_name() -> None:
    key = cohort().cohort_key
    assert cohort_id(key) == cohort_id(key) and len(cohort_id(key)) == 20
    assert cohort_id(key) != cohort_id(cohort(site="south").cohort_key)
    assert cohort_id(key).isalnum()


def test_no_pooled_remission_rate_across_sites_judging_by_different_definitions() -> None:
    strict = cohort("south", remitted=11).model_copy(update={"definition": "response>=50%;phq9<5;gad7<5;pcl5<31"})
    figures = totals([cohort("north", remitted=11), strict])
    phq9 = next(i for i in figures.instruments if i.instrument == "phq9")
    assert phq9.remitted.sum_of_shown == 22 and phq9.remission_rate is None
    assert phq9.response_rate is not None and "different definitions" in phq9.rate_explanation
    assert len(figures.definitions) == 2
