"""The network's view of what the sites publish: which publication of a cohort is the latest, figures summed
across sites, and their trend month by month. Pure rules, no I/O.

What a sum across sites may claim:

- Every count a site publishes counts *courses* at that site. Summed across sites (or months) it is the number of
  courses, and only an upper bound on the number of people: one patient may attend two sites (or start two
  courses). So a complete sum is marked ``upper_bound``.
- A suppressed count carries no number (it may hide anything from 1 to 10, or, by complementary suppression, more).
  It is never read as 0: a sum over cells of which any is suppressed is the sum of the *shown* counts only, marked
  ``lower_bound`` (the cohort's real number of courses is at least that), and says how many cells it leaves out.
- A rate (responded / with a result) is shown only when both sums are complete: a rate over the shown part would
  describe whichever sites happen to be large enough, not the network.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict

from shared.events.billing import AccessBarrierReason
from shared.events.outcomes import CohortCut, CohortOutcomesPublished, InstrumentFigures, ReleasedCount
from shared.treatment import AdverseEventType, Indication, Route

# The instruments a cohort reports (InstrumentFigures.instrument).
InstrumentName = Literal["phq9", "gad7", "pcl5"]
INSTRUMENTS: tuple[InstrumentName, ...] = get_args(InstrumentName)
BARRIER_REASONS: tuple[AccessBarrierReason, ...] = get_args(AccessBarrierReason)


def replaces(stored_generated_at: datetime | None, incoming_generated_at: datetime) -> bool:
    """Whether a publication of a cohort replaces the one stored. A newer one does; an older one (a redelivery, or
    a late copy) does not. An equal stamp replaces too: sites stamp a release with its period, not its instant,
    so two releases of one period share a stamp, and the network topic (one partition, keyed by cohort) delivers
    them in the order the site published them."""
    return stored_generated_at is None or incoming_generated_at >= stored_generated_at


def cohort_id(cohort_key: str) -> str:
    """A short, stable, URL- and FHIR-id-safe name of a cohort (site x indication x route x month x cut x value):
    its key is too long, and has characters, that a FHIR id may not (64 of [A-Za-z0-9.-])."""
    return hashlib.sha256(cohort_key.encode()).hexdigest()[:20]


class TotalStatus(StrEnum):
    complete = "complete"  # every cell's count shown: the sum is the number of courses
    partial = "partial"  # some cells suppressed: the sum of the shown counts only, a lower bound
    suppressed = "suppressed"  # every cell suppressed: no number at all
    no_data = "no_data"  # no cell to sum


class NetworkTotal(BaseModel):
    """A count summed across cells (sites, and months in a range). ``sum_of_shown`` is the sum of the counts
    shown, never counting a suppressed cell as 0; ``status`` says what that sum is."""

    model_config = ConfigDict(frozen=True)

    status: TotalStatus
    sum_of_shown: int | None
    cells: int
    cells_suppressed: int
    sites: int
    upper_bound: bool
    lower_bound: bool
    explanation: str


def sum_across_sites(cells: Iterable[tuple[str, ReleasedCount]]) -> NetworkTotal:
    """The sum of (site, count) cells, saying what it may claim (see the module's doc)."""
    cells = list(cells)
    shown = [c.count for _, c in cells if c.count is not None]
    suppressed = len(cells) - len(shown)
    sites = len({site for site, _ in cells})
    if not cells:
        return NetworkTotal(
            status=TotalStatus.no_data,
            sum_of_shown=None,
            cells=0,
            cells_suppressed=0,
            sites=0,
            upper_bound=False,
            lower_bound=False,
            explanation="No site published this figure for this selection.",
        )
    if not shown:
        return NetworkTotal(
            status=TotalStatus.suppressed,
            sum_of_shown=None,
            cells=len(cells),
            cells_suppressed=suppressed,
            sites=sites,
            upper_bound=False,
            lower_bound=False,
            explanation=f"Every one of the {len(cells)} counts is suppressed (1 to 10, or hidden to protect another): "
            "no number can be shown.",
        )
    total = sum(shown)
    if suppressed:
        return NetworkTotal(
            status=TotalStatus.partial,
            sum_of_shown=total,
            cells=len(cells),
            cells_suppressed=suppressed,
            sites=sites,
            upper_bound=False,
            lower_bound=True,
            explanation=f"The sum of the {len(shown)} counts shown; {suppressed} of {len(cells)} are suppressed and "
            "not included (never read as 0), so the real number of courses is at least this.",
        )
    return NetworkTotal(
        status=TotalStatus.complete,
        sum_of_shown=total,
        cells=len(cells),
        cells_suppressed=0,
        sites=sites,
        upper_bound=True,
        lower_bound=False,
        explanation=f"The number of courses over {sites} site(s); an upper bound on the number of patients, since "
        "one patient may attend two sites and each site counts its own courses.",
    )


def pooled_rate(numerator: NetworkTotal, denominator: NetworkTotal) -> float | None:
    """numerator / denominator, pooled over courses, only when both sums are complete and the denominator is not 0."""
    if numerator.status is not TotalStatus.complete or denominator.status is not TotalStatus.complete:
        return None
    assert numerator.sum_of_shown is not None and denominator.sum_of_shown is not None
    if denominator.sum_of_shown == 0:
        return None
    return round(numerator.sum_of_shown / denominator.sum_of_shown, 4)


RATE_EXPLANATION = (
    "Pooled over every site's courses; shown only when no count behind it is suppressed (a rate over the shown part "
    "would describe the larger sites only)."
)


MIXED_DEFINITIONS = " No remission rate: the sites judged remission by different definitions (see definitions)."


class InstrumentTotals(BaseModel):
    model_config = ConfigDict(frozen=True)

    instrument: InstrumentName
    with_result: NetworkTotal
    responded: NetworkTotal
    remitted: NetworkTotal
    response_rate: float | None
    remission_rate: float | None
    rate_explanation: str = RATE_EXPLANATION


class AdverseEventTotals(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: AdverseEventType
    courses: NetworkTotal
    serious_courses: NetworkTotal


class BarrierTotals(BaseModel):
    model_config = ConfigDict(frozen=True)

    reason: AccessBarrierReason
    courses: NetworkTotal


class NetworkTotals(BaseModel):
    """What a selection of one cut's cohorts comes to across sites (and months, in a range)."""

    model_config = ConfigDict(frozen=True)

    cut: CohortCut
    cut_value: str
    periods: list[str]
    sites: list[str]
    indications: list[Indication]
    routes: list[Route]
    definitions: list[str]
    courses: NetworkTotal
    started: NetworkTotal
    completed: NetworkTotal
    dropped_out: NetworkTotal
    instruments: list[InstrumentTotals]
    adverse_events: list[AdverseEventTotals]
    barriers: list[BarrierTotals]


class SummingMixedCuts(ValueError):
    """Cohorts of two cuts (or cut values) overlap: the same course is in both, so their sum counts it twice."""


def _instrument(cohort: CohortOutcomesPublished, instrument: InstrumentName) -> InstrumentFigures | None:
    return next((f for f in cohort.instruments if f.instrument == instrument), None)


def _instrument_totals(cohorts: Sequence[CohortOutcomesPublished], name: InstrumentName) -> InstrumentTotals:
    # Sites may judge by different definitions (a PCL-5 cutoff of 31 at one, 33 at another): their remissions
    # are not the same thing, so no pooled rate mixes them (found in review). The counts are still summed.
    one_definition = len({c.definition for c in cohorts}) <= 1
    figures = [(c.site, f) for c in cohorts if (f := _instrument(c, name)) is not None]
    with_result = sum_across_sites((site, f.with_result) for site, f in figures)
    responded = sum_across_sites((site, f.responded) for site, f in figures)
    remitted = sum_across_sites((site, f.remitted) for site, f in figures)
    return InstrumentTotals(
        instrument=name,
        with_result=with_result,
        responded=responded,
        remitted=remitted,
        response_rate=pooled_rate(responded, with_result),
        remission_rate=pooled_rate(remitted, with_result) if one_definition else None,
        rate_explanation=RATE_EXPLANATION if one_definition else RATE_EXPLANATION + MIXED_DEFINITIONS,
    )


def totals(cohorts: Sequence[CohortOutcomesPublished], cut: CohortCut = "all", cut_value: str = "all") -> NetworkTotals:
    """Sums of one cut value's cohorts across sites, indications, routes and months. Refuses cohorts of any other
    cut or cut value: they hold the same courses again."""
    if any(c.cut != cut or c.cut_value != cut_value for c in cohorts):
        raise SummingMixedCuts(f"only cohorts of cut {cut}={cut_value} may be summed together")
    instruments = [
        _instrument_totals(cohorts, name)
        for name in INSTRUMENTS
        if any(_instrument(c, name) is not None for c in cohorts)
    ]
    adverse_events = [
        AdverseEventTotals(
            type=kind,
            courses=sum_across_sites((c.site, a.courses) for c in cohorts for a in c.adverse_events if a.type == kind),
            serious_courses=sum_across_sites(
                (c.site, a.serious_courses) for c in cohorts for a in c.adverse_events if a.type == kind
            ),
        )
        for kind in AdverseEventType
        if any(a.type == kind for c in cohorts for a in c.adverse_events)
    ]
    barriers = [
        BarrierTotals(
            reason=reason,
            courses=sum_across_sites((c.site, b.courses) for c in cohorts for b in c.barriers if b.reason == reason),
        )
        for reason in BARRIER_REASONS
        if any(b.reason == reason for c in cohorts for b in c.barriers)
    ]
    return NetworkTotals(
        cut=cut,
        cut_value=cut_value,
        periods=sorted({c.period for c in cohorts}),
        sites=sorted({c.site for c in cohorts}),
        indications=sorted({c.indication for c in cohorts}),
        routes=sorted({c.route for c in cohorts}),
        definitions=sorted({c.definition for c in cohorts}),
        courses=sum_across_sites((c.site, c.courses) for c in cohorts),
        started=sum_across_sites((c.site, c.started) for c in cohorts),
        completed=sum_across_sites((c.site, c.completed) for c in cohorts),
        dropped_out=sum_across_sites((c.site, c.dropped_out) for c in cohorts),
        instruments=instruments,
        adverse_events=adverse_events,
        barriers=barriers,
    )


class TrendPoint(BaseModel):
    """One month of a trend: that month's cohorts summed across sites."""

    model_config = ConfigDict(frozen=True)

    period: str
    totals: NetworkTotals


def trend(
    cohorts: Sequence[CohortOutcomesPublished],
    cut: CohortCut = "all",
    cut_value: str = "all",
    instrument: InstrumentName | None = None,
) -> list[TrendPoint]:
    """Month by month (in order, only months some site published), the totals of that month's cohorts; with an
    instrument, only that instrument's figures."""
    by_period: dict[str, list[CohortOutcomesPublished]] = {}
    for cohort in cohorts:
        by_period.setdefault(cohort.period, []).append(cohort)
    points = []
    for period in sorted(by_period):
        month = totals(by_period[period], cut, cut_value)
        if instrument is not None:
            month = month.model_copy(
                update={"instruments": [i for i in month.instruments if i.instrument == instrument]}
            )
        points.append(TrendPoint(period=period, totals=month))
    return points
