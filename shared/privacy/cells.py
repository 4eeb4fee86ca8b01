"""The cells the network is shown, and what a reader knows holds between their true values.

A cell is one count of one published cohort (site x indication x route x month x cut value) and measure, e.g.
``phq9.responded`` of the courses of north's IV depression cohort of 2025-03 with prior trials "2". Its true
value is a non-negative integer; the reader sees it as a number or as suppressed. What the reader also knows,
from the published definitions, are the linear relations below: parts never exceed their wholes, the cells of a
cut add up to the whole cohort, and some counts never fall from one release to the next. The auditor
(inference.py) bounds every suppressed cell by linear programming over exactly these relations, so each one
must be true of the code that counts (services/outcomes/domain/cohorts.py and course_summary.py): a relation
stated too strongly makes the auditor see leaks that are not there, one left out makes it miss real ones.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Literal, NamedTuple

from shared.events.outcomes import CohortAggregatePublished, CohortOutcomesPublished, ReleasedCount

ALL = "all"
# The older registrations-per-month aggregate: its cells are months of one cohort, and "all" is their total.
AGGREGATE_PREFIX = "aggregate."
AGGREGATE_ROUTE = "-"


class MeasureKind(StrEnum):
    courses = "courses"
    started = "started"
    completed = "completed"
    dropped_out = "dropped_out"
    with_result = "with_result"
    responded = "responded"
    remitted = "remitted"
    adverse_courses = "adverse_courses"
    adverse_serious = "adverse_serious"
    barrier_courses = "barrier_courses"
    aggregate = "aggregate"  # a month (or the total) of a CohortAggregatePublished


class CellId(NamedTuple):
    """One published count. ``measure`` is ``courses``, ``started``, ``completed``, ``dropped_out``,
    ``{instrument}.with_result|responded|remitted``, ``adverse.{type}.courses|serious``,
    ``barrier.{reason}.courses``; or ``aggregate.{measure}`` for a CohortAggregatePublished (whose cohort name
    stands in ``indication``, and whose month, or "all" for its total, in ``period``). A named tuple, not a
    dataclass: the auditor hashes and sorts millions of them."""

    site: str
    indication: str
    route: str
    period: str
    cut: str
    cut_value: str
    measure: str

    @property
    def kind(self) -> MeasureKind:
        return measure_kind(self.measure)

    @property
    def group(self) -> GroupKey:
        return group_of(self)

    def __str__(self) -> str:
        return "|".join((self.site, self.indication, self.route, self.period, self.cut, self.cut_value, self.measure))


# Cells that relations can join: a cohort's site x indication x route x month (every cut of it), or one
# aggregate's months. No relation crosses two groups, so each can be judged on its own.
GroupKey = tuple[str, str, str, str]


def group_of(cell: CellId) -> GroupKey:
    if cell.route == AGGREGATE_ROUTE:
        return (cell.site, cell.indication, cell.route, "*")
    return (cell.site, cell.indication, cell.route, cell.period)


@cache
def measure_kind(measure: str) -> MeasureKind:
    head, _, rest = measure.partition(".")
    if not rest:
        return MeasureKind(head)
    if head == "adverse":
        return MeasureKind.adverse_serious if rest.endswith(".serious") else MeasureKind.adverse_courses
    if head == "barrier":
        return MeasureKind.barrier_courses
    if head == "aggregate":
        return MeasureKind.aggregate
    return MeasureKind(rest)  # {instrument}.with_result|responded|remitted


def cells_of(figures: CohortOutcomesPublished) -> dict[CellId, ReleasedCount]:
    """Every count of one published cohort, by cell."""

    def cell(measure: str) -> CellId:
        return CellId(
            figures.site,
            figures.indication.value,
            figures.route.value,
            figures.period,
            figures.cut,
            figures.cut_value,
            measure,
        )

    found = {
        cell("courses"): figures.courses,
        cell("started"): figures.started,
        cell("completed"): figures.completed,
        cell("dropped_out"): figures.dropped_out,
    }
    for instrument in figures.instruments:
        found[cell(f"{instrument.instrument}.with_result")] = instrument.with_result
        found[cell(f"{instrument.instrument}.responded")] = instrument.responded
        found[cell(f"{instrument.instrument}.remitted")] = instrument.remitted
    for adverse in figures.adverse_events:
        found[cell(f"adverse.{adverse.type.value}.courses")] = adverse.courses
        found[cell(f"adverse.{adverse.type.value}.serious")] = adverse.serious_courses
    for barrier in figures.barriers:
        found[cell(f"barrier.{barrier.reason}.courses")] = barrier.courses
    return found


def cells_of_aggregate(figures: CohortAggregatePublished) -> dict[CellId, ReleasedCount]:
    """The months and the total of a CohortAggregatePublished (registrations per month)."""
    measure = AGGREGATE_PREFIX + figures.measure

    def released(count: int | None) -> ReleasedCount:
        # Built without re-validation: a shown 1-10 must reach the auditor, not fail here.
        return ReleasedCount.model_construct(count=count, suppressed=count is None)

    found = {
        CellId(figures.site, figures.cohort, AGGREGATE_ROUTE, c.period, ALL, ALL, measure): released(c.count)
        for c in figures.cells
    }
    total = CellId(figures.site, figures.cohort, AGGREGATE_ROUTE, ALL, ALL, ALL, measure)
    found[total] = released(figures.total.count)
    return found


# --- relations --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Relation:
    """sum(coefficient * true value) == 0 (``equal``) or <= 0, over cells of one version."""

    terms: tuple[tuple[CellId, int], ...]
    equal: bool
    why: str


Population = Literal["courses", "dosed"]

# Which courses a measure counts: every course of the cohort, or only the dosed ones (cohorts.aggregate: ``dosed``).
POPULATION: dict[MeasureKind, Population] = {
    MeasureKind.courses: "courses",
    MeasureKind.barrier_courses: "courses",
    MeasureKind.started: "dosed",
    MeasureKind.completed: "dosed",
    MeasureKind.dropped_out: "dosed",
    MeasureKind.with_result: "dosed",
    MeasureKind.responded: "dosed",
    MeasureKind.remitted: "dosed",
    MeasureKind.adverse_courses: "dosed",
    MeasureKind.adverse_serious: "dosed",
}

# How the cells of one cut add up to the cohort's "all" cell of the same measure: "=" when every course the
# measure counts has a value of the cut (it is in exactly one of the cut's cohorts), "<=" when some may have none.
# A course joins one value of each cut it has a value for (cohorts.py, CUTS and cohort_keys); when a cut's value
# is None comes from course_summary.py (summarise):
#   payer         never None: PayerGroup.unknown until billing determines it
#   prior_trials  never None: the band of a count of failed trials
#   age_band      None without a birth date, or with one after the day
#   dose_band     None before the first dose; a dosed course always has one (for the mg/kg routes too: every
#                 DoseAdministered carries dose_mg_per_kg, shared/events/sessions.py)
#   frequency     None before the first dose (one dose is "single_dose")
CUT_SUMS: dict[tuple[str, Population], Literal["=", "<="]] = {
    ("payer", "courses"): "=",
    ("payer", "dosed"): "=",
    ("prior_trials", "courses"): "=",
    ("prior_trials", "dosed"): "=",
    ("age_band", "courses"): "<=",
    ("age_band", "dosed"): "<=",
    ("dose_band", "courses"): "<=",
    ("dose_band", "dosed"): "=",
    ("frequency", "courses"): "<=",
    ("frequency", "dosed"): "=",
}

# Counts that never fall from one version of a cell to the next: a course stays in the cohort of the month it was
# planned (cohorts.cohort_keys), and what it came to (a dose, completed, dropped out, a result, an adverse event, a
# barrier) is not taken back. Responded and remitted are judged on the latest score, which can fall back.
MONOTONE_MEASURES: frozenset[MeasureKind] = frozenset(MeasureKind) - {MeasureKind.responded, MeasureKind.remitted}


def is_monotone(cell: CellId) -> bool:
    """Whether the cell's true value never falls from one version to the next. Only where a course cannot leave
    the cell's cohort: the whole cohort, and an age band for the dosed courses (the age is taken at the first
    dose). Before its first dose a course's age band is taken at planning and may change at the dose; the dose band
    and frequency follow the doses given so far, the payer billing's latest determination (handlers.on_coverage),
    prior trials the failed trials counted so far (trajectories.load_site_facts)."""
    kind = cell.kind
    if kind not in MONOTONE_MEASURES:
        return False
    if cell.cut == ALL or kind is MeasureKind.aggregate:
        return True
    return cell.cut == "age_band" and POPULATION[kind] == "dosed"


def _part_of(part: CellId | None, whole: CellId | None, why: str) -> list[Relation]:
    if part is None or whole is None:
        return []
    return [Relation(((part, 1), (whole, -1)), equal=False, why=why)]


def _within_cohort(by_measure: dict[str, CellId]) -> list[Relation]:
    """Part <= whole inside one cohort (cohorts.aggregate: each count is of a subset of its whole's courses)."""
    get = by_measure.get
    found = _part_of(get("started"), get("courses"), "started <= courses")
    completed, dropped_out, started = get("completed"), get("dropped_out"), get("started")
    if started is not None:
        ended = [(c, 1) for c in (completed, dropped_out) if c is not None]
        if ended:
            found.append(Relation((*ended, (started, -1)), equal=False, why="completed + dropped_out <= started"))
    for measure, cell in by_measure.items():
        kind = cell.kind
        if kind is MeasureKind.with_result:
            found += _part_of(cell, started, "with_result <= started")
        elif kind in (MeasureKind.responded, MeasureKind.remitted):
            instrument = measure.partition(".")[0]
            found += _part_of(cell, get(f"{instrument}.with_result"), f"{kind.value} <= with_result")
        elif kind is MeasureKind.adverse_courses:
            found += _part_of(cell, started, "adverse courses <= started")
        elif kind is MeasureKind.adverse_serious:
            found += _part_of(cell, get(measure.removesuffix(".serious") + ".courses"), "serious <= adverse courses")
        elif kind is MeasureKind.barrier_courses:
            found += _part_of(cell, get("courses"), "barrier courses <= courses")
    return found


def relations(cells: Collection[CellId]) -> list[Relation]:
    """Every relation a reader knows holds among these cells' true values at one version."""
    cohorts: dict[tuple[str, ...], dict[str, CellId]] = defaultdict(dict)
    cuts: dict[tuple[GroupKey, str, str], list[CellId]] = defaultdict(list)  # (group, measure, cut) -> cells
    wholes: dict[tuple[GroupKey, str], CellId] = {}
    months: dict[tuple[str, ...], list[CellId]] = defaultdict(list)
    totals: dict[tuple[str, ...], CellId] = {}
    for cell in cells:
        if cell.route == AGGREGATE_ROUTE:
            aggregate = (cell.site, cell.indication, cell.cut, cell.cut_value, cell.measure)
            if cell.period == ALL:
                totals[aggregate] = cell
            else:
                months[aggregate].append(cell)
            continue
        cohorts[(cell.site, cell.indication, cell.route, cell.period, cell.cut, cell.cut_value)][cell.measure] = cell
        if cell.cut == ALL:
            wholes[(cell.group, cell.measure)] = cell
        else:
            cuts[(cell.group, cell.measure, cell.cut)].append(cell)
    found: list[Relation] = []
    for by_measure in cohorts.values():
        found += _within_cohort(by_measure)
    for (group, measure, cut), parts in cuts.items():
        whole = wholes.get((group, measure))
        sense = CUT_SUMS.get((cut, POPULATION[measure_kind(measure)]))
        if whole is None or sense is None:
            continue
        terms = (*((c, 1) for c in sorted(parts)), (whole, -1))
        found.append(Relation(terms, equal=sense == "=", why=f"{cut} cells {sense} all"))
    for name, parts in months.items():
        total = totals.get(name)
        if total is not None:
            found.append(Relation((*((c, 1) for c in sorted(parts)), (total, -1)), equal=True, why="months = total"))
    return found


def cells_of_all(figures: Iterable[CohortOutcomesPublished | CohortAggregatePublished]) -> dict[CellId, ReleasedCount]:
    """The cells of many published cohorts (one version)."""
    found: dict[CellId, ReleasedCount] = {}
    for one in figures:
        found.update(cells_of(one) if isinstance(one, CohortOutcomesPublished) else cells_of_aggregate(one))
    return found


@dataclass(frozen=True, slots=True)
class CandidateCell:
    """A cell of a release being prepared: its raw (true) count, whether it is to be suppressed, and the figure it
    would show (the raw count unless a stale figure is kept: one moves only by 11 or more)."""

    raw: int
    suppressed: bool
    shown: int | None = None

    @property
    def figure(self) -> int:
        return self.raw if self.shown is None else self.shown
