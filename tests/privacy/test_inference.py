"""What a reader of every published version can infer (shared/privacy/inference.py), on published-style cells."""

from __future__ import annotations

from collections.abc import Mapping

import highspy
import numpy as np
import pytest
from highspy._core import _Highs

from shared.events.outcomes import ReleasedCount
from shared.privacy import inference
from shared.privacy.__main__ import synthetic_versions
from shared.privacy.cells import CellId, is_monotone, relations
from shared.privacy.inference import (
    CandidateCell,
    Inference,
    ReleaseRefused,
    Shown,
    SumBound,
    infer_shown,
    protect,
)
from tests.privacy.reader import infer


def cell(cut: str = "all", value: str = "all", measure: str = "courses", period: str = "2025-03") -> CellId:
    return CellId("north", "depression", "iv_infusion", period, cut, value, measure)


def shown(count: int | None) -> ReleasedCount:
    return ReleasedCount(suppressed=True) if count is None else ReleasedCount(count=count)


def version(cells: Mapping[CellId, int | None]) -> dict[CellId, ReleasedCount]:
    return {c: shown(n) for c, n in cells.items()}


def range_of(result: Inference, at: CellId, version_index: int = 0) -> tuple[int, int | None]:
    found = result.ranges[(at, version_index)]
    return found.low, found.high


# The issue's example, mapped onto one cohort: its prior-trials cut shows 25, hidden, 14 and the whole cohort 42.
ISSUE = {
    cell(): 42,
    cell("prior_trials", "0"): 25,
    cell("prior_trials", "1"): None,
    cell("prior_trials", "2"): 14,
}


def test_the_issues_example_gives_the_hidden_cell_by_subtraction() -> None:
    result = infer([version(ISSUE)])
    [leak] = result.leaks
    assert (leak.cell, leak.version, leak.low, leak.high) == (cell("prior_trials", "1"), 0, 3, 3)


def test_a_complementary_cell_hidden_too_leaves_no_leak() -> None:
    result = infer([version({**ISSUE, cell("prior_trials", "2"): None})], exact=True)
    assert result.leaks == ()
    assert range_of(result, cell("prior_trials", "1")) == (0, 17)
    assert range_of(result, cell("prior_trials", "2")) == (0, 17)


def test_age_bands_are_an_upper_bound_and_that_bound_can_leak() -> None:
    # A course without a birth date is in no age band: the bands add up to at most the whole, which still caps.
    ages = {cell(): 42, cell("age_band", "25-34"): 25, cell("age_band", "35-44"): None, cell("age_band", "45-54"): 14}
    [leak] = infer([version(ages)]).leaks
    assert (leak.low, leak.high) == (0, 3)


def test_dose_band_sums_exactly_over_dosed_courses_only() -> None:
    # Courses never dosed have no dose band: the bands' courses only bound the whole; their started add up to it.
    cells = {
        cell(): 60,
        cell(measure="started"): 42,
        cell("dose_band", "<0.5 mg/kg"): 30,
        cell("dose_band", "0.5-0.74 mg/kg"): None,
        cell("dose_band", "<0.5 mg/kg", "started"): 25,
        cell("dose_band", "0.5-0.74 mg/kg", "started"): None,
        cell("dose_band", ">=0.75 mg/kg", "started"): 14,
    }
    result = infer([version(cells)], exact=True)
    assert range_of(result, cell("dose_band", "0.5-0.74 mg/kg", "started")) == (3, 3)
    # Its courses: at least the 3 started, at most 60 - 30.
    assert range_of(result, cell("dose_band", "0.5-0.74 mg/kg")) == (3, 30)


def test_a_part_never_exceeds_its_whole_within_a_cohort() -> None:
    cells = {cell(): 15, cell(measure="started"): 12, cell(measure="completed"): None, cell(measure="dropped_out"): 0}
    result = infer([version(cells)], exact=True)
    assert range_of(result, cell(measure="completed")) == (0, 12)
    [leak] = infer([version({**cells, cell(measure="started"): 0})]).leaks
    assert (leak.low, leak.high) == (0, 0)


def test_differencing_across_versions_with_a_monotone_count_narrows_a_hidden_one() -> None:
    # Shown exactly before, hidden now: started never falls, and cannot exceed the courses shown now.
    before = {cell(): 30, cell(measure="started"): 25}
    now = {cell(): 33, cell(measure="started"): None}
    assert is_monotone(cell(measure="started"))
    [leak] = infer([version(before), version(now)]).leaks
    assert (leak.cell, leak.version, leak.low, leak.high) == (cell(measure="started"), 1, 25, 33)


def test_a_count_that_can_fall_gives_no_lower_bound_from_its_past() -> None:
    before = {cell(): 40, cell(measure="started"): 40, cell(measure="phq9.with_result"): 30}
    before[cell(measure="phq9.responded")] = 25
    now = {**before, cell(measure="phq9.with_result"): 36, cell(measure="phq9.responded"): None}
    assert not is_monotone(cell(measure="phq9.responded"))
    result = infer([version(before), version(now)], exact=True)
    assert result.leaks == ()
    assert range_of(result, cell(measure="phq9.responded"), 1) == (0, 36)


def test_a_cut_a_course_can_leave_is_not_taken_as_monotone() -> None:
    assert not is_monotone(cell("payer", "insured", "started"))
    assert not is_monotone(cell("dose_band", "<0.5 mg/kg", "started"))
    assert is_monotone(cell("age_band", "25-34", "started"))
    assert not is_monotone(cell("age_band", "25-34", "courses"))  # its band may change at the first dose
    # Were payer cells monotone, 19 and 11 before would pin them to 19..22 and 11..14 now.
    before = {cell(): 30, cell("payer", "insured"): 19, cell("payer", "self_pay"): 11}
    now = {cell(): 33, cell("payer", "insured"): None, cell("payer", "self_pay"): None}
    result = infer([version(before), version(now)], exact=True)
    assert result.leaks == ()
    assert range_of(result, cell("payer", "insured"), 1) == (0, 33)


def test_an_unchanged_shown_count_may_be_stale_by_up_to_ten() -> None:
    # Courses still shows 30: the truth may have moved by up to 10 without a new figure (the step rule).
    before = {cell(): 30, cell(measure="started"): 25}
    now = {cell(): 30, cell(measure="started"): None}
    result = infer([version(before), version(now)], exact=True)
    assert result.leaks == ()
    assert range_of(result, cell(measure="started"), 1) == (25, 40)
    # A figure that changed is exact: 31 now pins started to 25..31.
    [leak] = infer([version(before), version({**now, cell(): 31})]).leaks
    assert (leak.low, leak.high) == (25, 31)


def test_a_stale_figure_is_still_at_least_eleven() -> None:
    # Insured still shows 14: its truth is 11..24 (a count 1-10 is never shown), so self-pay is 41 - that.
    before = {cell(): 40, cell("payer", "insured"): 14, cell("payer", "self_pay"): 26}
    now = {cell(): 41, cell("payer", "insured"): 14, cell("payer", "self_pay"): None}
    result = infer([version(before), version(now)], exact=True)
    assert range_of(result, cell("payer", "self_pay"), 1) == (17, 30)


def test_a_version_that_changes_nothing_of_a_group_adds_nothing() -> None:
    other = CellId("south", "depression", "iv_infusion", "2025-03", "all", "all", "courses")
    versions = [version(ISSUE), version({other: 50}), version({other: 70})]
    result = infer(versions)
    assert [(leak.cell, leak.version) for leak in result.leaks] == [(cell("prior_trials", "1"), 0)]


def test_a_cohort_left_out_of_a_version_keeps_what_it_showed() -> None:
    # A site publishes only the cohorts that changed: the 25 and 14 still stand beside the new whole.
    # Unchanged, they may be stale: 45 - (15..35) - (11..24).
    first = version(ISSUE)
    second = version({cell(): 45, cell("prior_trials", "1"): None})
    result = infer([first, second], exact=True)
    assert [(leak.version, leak.low, leak.high) for leak in result.leaks] == [(0, 3, 3)]
    assert range_of(result, cell("prior_trials", "1"), 1) == (0, 19)


def test_an_extra_bound_from_the_api_is_used() -> None:
    hidden = {**ISSUE, cell("prior_trials", "2"): None}
    bound = SumBound((cell("prior_trials", "1"),), upper=6)
    leaks = {(leak.cell, leak.low, leak.high) for leak in infer([version(hidden)], [bound]).leaks}
    # Its complement follows: 17 - (0..6).
    assert leaks == {(cell("prior_trials", "1"), 0, 6), (cell("prior_trials", "2"), 11, 17)}


def test_figures_no_truth_explains_are_reported_not_guessed() -> None:
    # Started was shown as 30 and is now shown as 20: it never falls, so no true values fit.
    before = {cell(): 40, cell(measure="started"): 30, cell(measure="completed"): None}
    now = {cell(): 40, cell(measure="started"): 20, cell(measure="completed"): None}
    result = infer([version(before), version(now)])
    assert result.contradictions
    assert any(cell(measure="started") in c.cells for c in result.contradictions)


def test_a_multi_row_component_is_solved_by_linear_programming() -> None:
    cells = {
        cell(): 60,
        cell(measure="started"): 50,
        cell("payer", "self_pay"): None,
        cell("payer", "insured"): None,
        cell("payer", "unknown"): 40,
        cell("payer", "self_pay", "started"): None,
        cell("payer", "insured", "started"): None,
        cell("payer", "unknown", "started"): 37,
    }
    result = infer([version(cells)], exact=True)
    assert result.stats.lp_solves > 0
    # self + insured = 20 courses, of which 13 started: each started is at most its courses.
    assert range_of(result, cell("payer", "self_pay")) == (0, 20)
    assert range_of(result, cell("payer", "self_pay", "started")) == (0, 13)
    assert result.leaks == ()


# --- the fast paths agree with a plain solver -------------------------------------------------------------------

SMALL_MEASURES = {"courses", "started", "completed", "dropped_out", "phq9.with_result", "phq9.responded"}


def small_instance(seed: int) -> list[dict[CellId, Shown]]:
    versions = synthetic_versions(2, versions=2, seed=seed, courses=(15, 60))
    return [{c: s for c, s in v.items() if c.measure in SMALL_MEASURES} for v in versions]


def reference_ranges(versions: list[dict[CellId, Shown]]) -> dict[tuple[CellId, int], tuple[int, int | None]]:
    """Every suppressed cell's range by one LP over everything, one fresh solve per bound: no presolve, no
    components, no shortcuts. Every version is kept (the inference keeps only those where a group changed)."""
    held: dict[CellId, Shown] = {}
    var: dict[tuple[CellId, int], int] = {}
    lo: list[float] = []
    hi: list[float] = []
    rows: list[tuple[dict[int, float], float, float]] = []
    for t, shown_now in enumerate(versions):
        before = dict(held)
        held.update(shown_now)
        for c, s in sorted(held.items()):
            var[(c, t)] = len(lo)
            if s is None:
                low, high = 0.0, highspy.kHighsInf
            elif s >= 11 and c in before and before[c] == s:
                low, high = max(11.0, s - 10.0), s + 10.0
            else:
                low, high = float(s), float(s)
            lo.append(low)
            hi.append(high)
            if t > 0 and c in before and is_monotone(c):
                rows.append(({var[(c, t - 1)]: 1.0, var[(c, t)]: -1.0}, -highspy.kHighsInf, 0.0))
        for r in relations(list(held)):
            terms = {var[(c, t)]: float(a) for c, a in r.terms}
            rows.append((terms, 0.0 if r.equal else -highspy.kHighsInf, 0.0))
    n = len(lo)
    starts, index, values = [0], [], []
    for terms, _, _ in rows:
        index += list(terms)
        values += list(terms.values())
        starts.append(len(index))
    found: dict[tuple[CellId, int], tuple[int, int | None]] = {}
    for (c, t), column in var.items():
        if versions_shown(versions, c, t) is not None:
            continue
        ends: list[float | None] = []
        for sense in (highspy.ObjSense.kMinimize, highspy.ObjSense.kMaximize):
            h = _Highs()
            h.setOptionValue("output_flag", False)
            costs = np.zeros(n)
            costs[column] = 1.0
            h.passModel(
                n,
                len(rows),
                len(index),
                int(highspy.MatrixFormat.kRowwise),
                int(sense),
                0.0,
                costs,
                np.array(lo),
                np.array(hi),
                np.array([r[1] for r in rows]),
                np.array([r[2] for r in rows]),
                np.array(starts, dtype=np.int32),
                np.array(index, dtype=np.int32),
                np.array(values),
                np.zeros(n, dtype=np.int32),
            )
            h.run()
            status = h.getModelStatus()
            assert status in (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kUnbounded), status
            ends.append(h.getInfo().objective_function_value if status == highspy.HighsModelStatus.kOptimal else None)
        least, most = ends
        assert least is not None
        found[(c, t)] = (max(0, int(np.ceil(least - 1e-6))), None if most is None else int(np.floor(most + 1e-6)))
    return found


def versions_shown(versions: list[dict[CellId, Shown]], c: CellId, t: int) -> Shown:
    for v in reversed(versions[: t + 1]):
        if c in v:
            return v[c]
    return None


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_range_matches_a_plain_solver(seed: int) -> None:
    versions = small_instance(seed)
    expected = reference_ranges(versions)
    result = infer_shown(versions, exact=True)
    got = {key: (r.low, r.high) for key, r in result.ranges.items()}
    assert result.contradictions == ()
    assert got  # something was suppressed
    for key, bounds in got.items():
        assert expected[key] == bounds, key
    # The fast mode finds the same leaks, and never claims a range narrower than the truth.
    fast = infer_shown(versions)
    assert fast.leaks == result.leaks
    for key, r in fast.ranges.items():
        low, high = expected[key]
        assert r.low >= low and (high is None or (r.high is not None and r.high <= high))


def test_worker_processes_give_the_same_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    versions = synthetic_versions(12, versions=2, seed=5, courses=(30, 200))
    alone = infer_shown(versions)
    monkeypatch.setattr(inference, "_PARALLEL_FROM_CELLS", 0)
    pooled = infer_shown(versions, workers=2)
    assert pooled.leaks == alone.leaks
    assert pooled.stats.lp_solves == alone.stats.lp_solves
    assert dict(pooled.ranges) == dict(alone.ranges)


# --- protect -----------------------------------------------------------------------------------------------------


def candidate(cells: Mapping[CellId, tuple[int, bool]]) -> dict[CellId, CandidateCell]:
    return {c: CandidateCell(raw=raw, suppressed=hidden) for c, (raw, hidden) in cells.items()}


def released(cells: Mapping[CellId, CandidateCell], hide: frozenset[CellId]) -> dict[CellId, ReleasedCount]:
    return {c: shown(None if k.suppressed or c in hide else k.figure) for c, k in cells.items()}


def test_protect_hides_the_smallest_related_cut_cell() -> None:
    cells = candidate(
        {
            cell(): (42, False),
            cell("prior_trials", "0"): (25, False),
            cell("prior_trials", "1"): (3, True),
            cell("prior_trials", "2"): (14, False),
        }
    )
    hide = protect(cells)
    assert hide == {cell("prior_trials", "2")}
    assert infer([released(cells, hide)]).leaks == ()


def test_protect_keeps_going_until_no_cell_leaks() -> None:
    # Hiding the self-pay courses is not enough: its started would then be had from the started cut.
    cells = candidate(
        {
            cell(): (60, False),
            cell(measure="started"): (50, False),
            cell("payer", "self_pay"): (14, False),
            cell("payer", "insured"): (5, True),
            cell("payer", "unknown"): (41, False),
            cell("payer", "self_pay", "started"): (12, False),
            cell("payer", "insured", "started"): (4, True),
            cell("payer", "unknown", "started"): (34, False),
        }
    )
    hide = protect(cells)
    assert cell("payer", "self_pay") in hide and cell("payer", "self_pay", "started") in hide
    assert not any(c.cut == "all" for c in hide), "a cut cell is hidden before the whole cohort's"
    assert infer([released(cells, hide)]).leaks == ()


def test_protect_judges_the_release_against_what_was_published_before() -> None:
    published = [version({cell(): 30, cell(measure="started"): 25})]
    cells = candidate({cell(): (33, False), cell(measure="started"): (28, True)})
    hide = protect(cells, published)
    assert hide == {cell()}
    assert infer([*published, released(cells, hide)]).leaks == ()


def test_protect_does_not_count_leaks_already_published_against_a_release() -> None:
    published = [version(ISSUE)]
    cells = candidate(
        {cell(): (42, False), cell("prior_trials", "0"): (25, False), cell("prior_trials", "1"): (3, True)}
    )
    cells[cell("prior_trials", "2")] = CandidateCell(raw=14, suppressed=True)
    assert protect(cells, published) == frozenset()


def test_protect_refuses_what_it_cannot_make_safe() -> None:
    cells = candidate(
        {cell(): (42, False), cell("prior_trials", "0"): (39, False), cell("prior_trials", "1"): (3, True)}
    )
    # A total the API gave bounds the hidden cell whatever else is hidden.
    with pytest.raises(ReleaseRefused) as refused:
        protect(cells, extra=[SumBound((cell("prior_trials", "1"),), upper=5)])
    assert {leak.cell for leak in refused.value.leaks} == {cell("prior_trials", "1")}
    # And within a bound of rounds.
    with pytest.raises(ReleaseRefused):
        protect(cells, max_iterations=0)


def test_protect_never_hides_a_zero() -> None:
    # A hidden 0 under a shown 0 is pinned back to 0..0 whatever else is hidden: hiding the 0 whole beside it
    # would only move the pin, so the release is refused rather than showing a hidden cell's value.
    cells = candidate(
        {
            cell(): (20, False),
            cell(measure="started"): (20, False),
            cell(measure="phq9.with_result"): (0, False),
            cell(measure="phq9.responded"): (0, True),
        }
    )
    with pytest.raises(ReleaseRefused) as refused:
        protect(cells)
    assert {leak.cell for leak in refused.value.leaks} == {cell(measure="phq9.responded")}
    # Where a non-zero cell can cover the leak, it is the one hidden: never the 0 beside it.
    cells = candidate(
        {
            cell(): (42, False),
            cell("prior_trials", "0"): (0, False),
            cell("prior_trials", "1"): (3, True),
            cell("prior_trials", "2"): (39, False),
        }
    )
    hide = protect(cells)
    assert hide and all(cells[c].figure > 0 for c in hide)
    assert infer([released(cells, hide)]).leaks == ()
