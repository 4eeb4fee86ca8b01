"""The network dashboard's rates: each over the cohorts where it and its whole were shown; a suppressed count is
never a 0."""

from __future__ import annotations

from services.console.api.dashboard import CohortRow, GroupBy, group_rates, network_summary


def row(site: str, with_result: int | None, responded: int | None, remitted: int | None) -> CohortRow:
    return CohortRow(site, "depression", "iv_infusion", "2026-03", 40, 30, with_result, responded, remitted)


def test_a_cohort_with_a_suppressed_count_is_left_out_of_the_rates_not_counted_as_zero() -> None:
    rows = [row("north", 20, 12, 0), row("north", 25, None, 11), row("south", 30, 15, None)]
    north, south = group_rates(rows, GroupBy.site)
    # North's second cohort hides its responders: it counts towards remission (11 of 25) but not response.
    assert (north.group, north.cohorts) == ("north", 2)
    assert (north.response.cohorts, north.response.whole, north.response.percent) == (1, 20, 60.0)
    assert (north.remission.cohorts, north.remission.whole, north.remission.percent) == (2, 45, 24.4)
    assert (south.response.percent, south.remission.percent) == (50.0, None)


def test_a_group_with_no_shown_counts_has_no_rate() -> None:
    [only] = group_rates([row("north", None, None, None)], GroupBy.site)
    assert only.response.cohorts == 0 and only.response.percent is None and only.remission.percent is None


def test_times_are_the_cohorts_medians_weighted_by_their_shown_counts_and_totals_leave_suppressed_out() -> None:
    rows = [
        CohortRow("north", "depression", "iv_infusion", "2026-03", 40, 30, 20, 12, 0, days_to_first_dose=6.0),
        CohortRow("north", "depression", "iv_infusion", "2026-04", 20, 10, None, None, None, days_to_first_dose=None),
        CohortRow("south", "depression", "iv_infusion", "2026-03", None, 15, 11, 11, 0, days_to_first_dose=12.0),
    ]
    summary = network_summary(rows)
    # (6 x 30 + 12 x 15) / 45 = 8.0 over the two cohorts where both the median and its count were shown.
    assert (summary.days_to_first_dose.value, summary.days_to_first_dose.cohorts) == (8.0, 2)
    assert (summary.total_courses, summary.total_started, summary.suppressed_cohorts) == (60, 55, 1)


def test_adverse_events_and_barriers_are_rates_over_cohorts_where_both_counts_were_shown() -> None:
    rows = [
        CohortRow("north", "d", "iv", "2026-03", 40, 30, 20, 12, 0, adverse_events={"nausea": 12}, barriers={}),
        CohortRow("south", "d", "iv", "2026-03", 50, 25, 20, 12, 0, adverse_events={"nausea": None}),
    ]
    summary = network_summary(rows)
    nausea = summary.adverse_events["nausea"]
    assert (nausea.cohorts, nausea.part, nausea.whole, nausea.percent) == (1, 12, 30, 40.0)
