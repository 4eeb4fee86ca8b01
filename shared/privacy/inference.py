"""What a reader who kept every published version can infer about each suppressed cell, by linear programming.

The reader's unknowns are the true values of every cell at every version. What they know (the release rules):

- a suppressed cell is >= 0, nothing more: a primary cell (1-10) and a complementary one look alike;
- a shown 0 is exactly 0;
- a shown count that is new, or changed since the cell's previous version, is exact;
- a shown count unchanged since the previous version is within 10 of the truth and at least 11: a shown figure
  moves only by 11 or more, so an unchanged one may be stale;
- the relations of cells.py at each version, and that monotone cells never fall between versions;
- any extra bounds on sums of cells (a network API total, say).

Each suppressed cell's range is [ceil(min), floor(max)] of its true value over that polytope. A range of fewer than
11 values is a leak: the reader has learnt more than "suppressed".

The work is split so that it stays fast on a network's whole history. Relations never cross a site x indication x
route x month (a group), so groups are solved apart (and, with ``workers``, in worker processes). Within a group
the cells the reader knows exactly become constants; a relation left with one unknown only bounds it (to whole
numbers: true values are counts), which may pin it and so on (vectorised, over all rows at once); the relations
left join unknowns into connected components, mostly small. A component without a suppressed cell is skipped; one
unknown alone has its bounds as its range; a single relation is solved by interval arithmetic, exactly; only the
rest get a HiGHS model, built once and re-solved with a changed objective (a warm start). Each optimal point is
kept as a witness: a bound a witness already reaches needs no solve of its own. By default (not ``exact``) a
range is only worked out until it is known to hold 11 values or more: after the first solve, a few more push
every unknown not yet known to be wide away from where it was seen, all at once, and only the cells still narrow
get solves of their own. Every leak's range is exact either way.

A group is only given a version where something it shows changed: in a version where nothing did, its values of
the previous one are still possible, so the reader learns nothing more there.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

import highspy
import numpy as np
import numpy.typing as npt
from highspy._core import _Highs

from shared.events.outcomes import CohortAggregatePublished, CohortOutcomesPublished, ReleasedCount
from shared.privacy.cells import (
    AGGREGATE_ROUTE,
    ALL,
    CandidateCell,
    CellId,
    GroupKey,
    cells_of_all,
    is_monotone,
    relations,
)

SMALLEST_SHOWN = 11  # shared.privacy.SMALLEST_SHOWN_COUNT: a count from 1 to 10 is never shown
STALE_BY = SMALLEST_SHOWN - 1  # a shown figure moves only by 11 or more, so it may lag the truth by up to 10
INF = highspy.kHighsInf
_EPS = 1e-6

Shown = int | None  # a shown count, or None: suppressed
Published = CohortOutcomesPublished | CohortAggregatePublished
# A version as published (the figures, or their cells), or as the reader sees it (cell -> shown count or None).
Version = Mapping[CellId, ReleasedCount] | Mapping[CellId, Shown] | Iterable[Published]


@dataclass(frozen=True, slots=True)
class SumBound:
    """Extra knowledge of the reader: ``lower <= sum of the cells' true values <= upper`` at one version (an index
    into the versions; -1 is the last), e.g. a total the network API gave."""

    cells: tuple[CellId, ...]
    lower: int | None = None
    upper: int | None = None
    version: int = -1


@dataclass(frozen=True, slots=True)
class CellRange:
    """What the reader can know of a suppressed cell's true value at one version: ``low..high`` (None: no upper
    bound). When not ``exact``, the range was only worked out until it held 11 values or more: the reader cannot
    narrow it below ``low..high``, and may know less."""

    cell: CellId
    version: int
    low: int
    high: int | None
    exact: bool = True

    @property
    def values(self) -> int | None:
        return None if self.high is None else self.high - self.low + 1

    @property
    def leaks(self) -> bool:
        return self.high is not None and self.high - self.low + 1 < SMALLEST_SHOWN


@dataclass(frozen=True, slots=True)
class Leak:
    """A suppressed cell the reader can pin to fewer than 11 values."""

    cell: CellId
    version: int
    low: int
    high: int

    def __str__(self) -> str:
        return f"{self.cell} @v{self.version}: {self.low}..{self.high}"


@dataclass(frozen=True, slots=True)
class Contradiction:
    """Published figures that no true values explain under the release rules (a rule was broken, or the versions
    were misread): nothing is concluded about the cells involved."""

    version: int
    cells: tuple[CellId, ...]
    why: str


@dataclass(frozen=True, slots=True)
class InferenceStats:
    versions: int
    cells: int  # cell-versions given a variable
    suppressed: int  # suppressed cell-versions
    components: int  # connected components with a suppressed cell
    lp_components: int  # of those, the ones that needed the solver
    lp_solves: int
    seconds: float


class Inference:
    """What the reader can infer: every leak and contradiction, and (built when first asked for: on a network's
    whole history they are hundreds of thousands) the ranges of every suppressed cell, at each version its group
    changed."""

    def __init__(
        self,
        leaks: tuple[Leak, ...],
        contradictions: tuple[Contradiction, ...],
        stats: InferenceStats,
        ranges: Callable[[], Iterable[CellRange]],
    ) -> None:
        self.leaks = leaks
        self.contradictions = contradictions
        self.stats = stats
        self._make_ranges = ranges
        self._ranges: dict[tuple[CellId, int], CellRange] | None = None

    @property
    def ranges(self) -> Mapping[tuple[CellId, int], CellRange]:
        if self._ranges is None:
            self._ranges = {(r.cell, r.version): r for r in self._make_ranges()}
        return self._ranges


def shown_version(version: Version) -> dict[CellId, Shown]:
    """A version as the reader sees it: each cell's shown count, or None when suppressed."""
    cells = version if isinstance(version, Mapping) else cells_of_all(version)
    return {cell: _shown(count) for cell, count in cells.items()}


def _shown(count: ReleasedCount | Shown) -> Shown:
    if isinstance(count, ReleasedCount):
        return None if count.suppressed else count.count
    return count


# --- the groups' versions ----------------------------------------------------------------------------------------

# A cell within its group: (the month, for an aggregate's cells, else ""), cut, cut_value, measure.
LocalKey = tuple[str, str, str, str]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
_HIDDEN = -1  # a suppressed cell, in the arrays below
_NEVER_FALLS = "never falls"
_EXTRA = "extra bound"


def _group_key(cell: CellId) -> GroupKey:
    return (cell[0], cell[1], cell[2], "*") if cell[2] == AGGREGATE_ROUTE else (cell[0], cell[1], cell[2], cell[3])


def _cell(group: GroupKey, key: LocalKey) -> CellId:
    period = key[0] or group[3]
    return CellId(group[0], group[1], group[2], period, key[1], key[2], key[3])


class _KeyTable:
    """Ids for the cells of a group, shared by every group, so groups travel to workers as arrays."""

    def __init__(self) -> None:
        self.ids: dict[tuple[str, ...], int] = {}
        self.keys: list[LocalKey] = []

    def id_of(self, cell: CellId) -> int:
        # The tail of the tuple names the cell within its group: no new tuple is built for a known one.
        tail = cell[3:] if cell[2] == AGGREGATE_ROUTE else cell[4:]
        found = self.ids.get(tail)
        if found is None:
            found = self.ids[tail] = len(self.keys)
            self.keys.append((cell[3], cell[4], cell[5], cell[6]) if len(tail) == 4 else ("", *cell[4:]))
        return found


class _Snapshot(NamedTuple):
    version: int
    keys: IntArray  # the cells the reader holds at this version, by key id, ascending
    shown: IntArray  # what each shows (_HIDDEN: suppressed)


@dataclass(slots=True)
class _Group:
    index: int
    key: GroupKey
    snapshots: list[_Snapshot] = field(default_factory=list)


# A term of an extra bound: (group index, version, key id).
_Term = tuple[int, int, int]


@dataclass(slots=True)
class _Unit:
    """Groups solved together (an extra bound over two groups joins them)."""

    groups: list[_Group]
    bounds: list[tuple[tuple[_Term, ...], float, float]]


def _snapshots(
    versions: Sequence[Mapping[CellId, Shown]], forced: set[tuple[GroupKey, int]], table: _KeyTable
) -> dict[GroupKey, _Group]:
    """Each group's cells at every version where something it shows changed (or an extra bound looks at it). A
    cell a version leaves out keeps what it last showed: a site publishes only the cohorts that changed."""
    held: dict[GroupKey, dict[int, int]] = {}
    groups: dict[GroupKey, _Group] = {}
    forced_at: dict[int, set[GroupKey]] = defaultdict(set)
    for group, at in forced:
        forced_at[at].add(group)
    for t, version in enumerate(versions):
        delta: dict[GroupKey, dict[int, int]] = defaultdict(dict)
        id_of = table.id_of
        for cell, shown in version.items():
            delta[_group_key(cell)][id_of(cell)] = _HIDDEN if shown is None else shown
        look = forced_at.get(t, set())
        for group in delta.keys() | look:
            before = held.get(group, {})
            changes = delta.get(group, {})
            if any(before.get(k, -2) != v for k, v in changes.items()):
                now = held[group] = {**before, **changes}
            elif group in look and group in held:
                now = before
            else:
                continue
            ordered = sorted(now)
            snapshot = _Snapshot(t, np.array(ordered, dtype=np.int64), np.array([now[k] for k in ordered]))
            groups.setdefault(group, _Group(len(groups), group)).snapshots.append(snapshot)
    return groups


def _units(
    versions: Sequence[Mapping[CellId, Shown]], extra: Sequence[SumBound], table: _KeyTable
) -> tuple[list[_Unit], list[Contradiction]]:
    last = len(versions) - 1
    resolved: list[tuple[tuple[CellId, ...], int, float, float]] = []
    for bound in extra:
        t = bound.version if bound.version >= 0 else last + 1 + bound.version
        lower = -INF if bound.lower is None else float(bound.lower)
        upper = INF if bound.upper is None else float(bound.upper)
        resolved.append((bound.cells, t, lower, upper))
    forced = {(_group_key(cell), t) for cells, t, _, _ in resolved for cell in cells}
    groups = _snapshots(versions, forced, table)
    parent: dict[GroupKey, GroupKey] = {g: g for g in groups}

    def root(g: GroupKey) -> GroupKey:
        while parent[g] != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    contradictions: list[Contradiction] = []
    kept: list[tuple[GroupKey, tuple[_Term, ...], float, float]] = []
    for cells, t, lower, upper in resolved:
        known = [c for c in cells if _group_key(c) in groups]
        if not known:
            if lower > _EPS:
                contradictions.append(Contradiction(t, cells, "a bound over cells never shown"))
            continue
        for cell in known[1:]:
            parent[root(_group_key(cell))] = root(_group_key(known[0]))
        terms = tuple((groups[_group_key(c)].index, t, table.id_of(c)) for c in known)
        kept.append((_group_key(known[0]), terms, lower, upper))
    units: dict[GroupKey, _Unit] = {}
    for key in sorted(groups):
        units.setdefault(root(key), _Unit([], [])).groups.append(groups[key])
    for key, terms, lower, upper in kept:
        units[root(key)].bounds.append((terms, lower, upper))
    return list(units.values()), contradictions


# --- one unit: variables, rows, presolve, components, solver ---------------------------------------------------


class _Template(NamedTuple):
    """The relations among a group's cells, by position in its snapshot: the same for every group of this shape."""

    starts: IntArray  # row r's entries are starts[r]:starts[r+1]
    columns: IntArray
    coefs: FloatArray
    lower: FloatArray
    whys: list[str]


class _Context:
    """What a worker keeps for a batch: the key table, and the templates and monotone cells it has worked out."""

    def __init__(self, keys: list[LocalKey]) -> None:
        self.keys = keys
        self.templates: dict[bytes, _Template] = {}
        monotone = [is_monotone(_cell(("", "", AGGREGATE_ROUTE if k[0] else "", ""), k)) for k in keys]
        self.monotone = np.array(monotone, dtype=np.bool_)

    def template(self, group: GroupKey, keys: IntArray) -> _Template:
        found = self.templates.get(keys.tobytes())
        if found is None:
            cells = [_cell(group, self.keys[k]) for k in keys]
            position = {cell: i for i, cell in enumerate(cells)}
            found_relations = relations(cells)
            lengths = [len(r.terms) for r in found_relations]
            found = _Template(
                np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64),
                np.array([position[c] for r in found_relations for c, _ in r.terms], dtype=np.int64),
                np.array([a for r in found_relations for _, a in r.terms], dtype=np.float64),
                np.array([0.0 if r.equal else -INF for r in found_relations]),
                [r.why for r in found_relations],
            )
            self.templates[keys.tobytes()] = found
        return found


@dataclass(slots=True)
class _Model:
    """A unit's unknowns (true values of cell-versions) and rows: lower <= sum(coef * x) <= upper, in CSR form."""

    lo: FloatArray
    hi: FloatArray
    hidden: BoolArray
    group: IntArray
    version: IntArray
    key: IntArray
    starts: IntArray
    columns: IntArray
    coefs: FloatArray
    lower: FloatArray
    upper: FloatArray
    whys: list[str]


def _build(unit: _Unit, context: _Context) -> _Model:
    lo: list[FloatArray] = []
    hi: list[FloatArray] = []
    hidden: list[BoolArray] = []
    groups: list[IntArray] = []
    versions: list[IntArray] = []
    keys: list[IntArray] = []
    lengths: list[IntArray] = []
    columns: list[IntArray] = []
    coefs: list[FloatArray] = []
    lower: list[FloatArray] = []
    upper: list[FloatArray] = []
    whys: list[str] = []
    base = 0
    where: dict[tuple[int, int], tuple[int, IntArray]] = {}  # (group, version) -> first variable, key ids
    for group in unit.groups:
        previous: _Snapshot | None = None
        previous_base = 0
        for snapshot in group.snapshots:
            n = len(snapshot.keys)
            shown = snapshot.shown
            stale = np.zeros(n, dtype=np.bool_)
            if previous is not None:
                _, now_at, before_at = np.intersect1d(
                    snapshot.keys, previous.keys, assume_unique=True, return_indices=True
                )
                stale[now_at] = previous.shown[before_at] == shown[now_at]
                falls = context.monotone[snapshot.keys[now_at]]
                links = len(now_at[falls])
                lengths.append(np.full(links, 2, dtype=np.int64))
                columns.append(np.stack([previous_base + before_at[falls], base + now_at[falls]], axis=1).ravel())
                coefs.append(np.tile([1.0, -1.0], links))
                lower.append(np.full(links, -INF))
                upper.append(np.zeros(links))
                whys += [_NEVER_FALLS] * links
            stale &= shown >= SMALLEST_SHOWN
            is_hidden = shown == _HIDDEN
            lo.append(np.where(is_hidden, 0, np.where(stale, np.maximum(SMALLEST_SHOWN, shown - STALE_BY), shown)))
            hi.append(np.where(is_hidden, INF, np.where(stale, shown + STALE_BY, shown)))
            hidden.append(is_hidden)
            groups.append(np.full(n, group.index, dtype=np.int64))
            versions.append(np.full(n, snapshot.version, dtype=np.int64))
            keys.append(snapshot.keys)
            template = context.template(group.key, snapshot.keys)
            lengths.append(np.diff(template.starts))
            columns.append(template.columns + base)
            coefs.append(template.coefs)
            lower.append(template.lower)
            upper.append(np.zeros(len(template.lower)))
            whys += template.whys
            where[(group.index, snapshot.version)] = (base, snapshot.keys)
            previous, previous_base = snapshot, base
            base += n
    for terms, bound_lo, bound_hi in unit.bounds:
        chosen: list[int] = []
        for group_index, version, key in terms:
            first, held = where.get((group_index, version), (0, np.zeros(0, dtype=np.int64)))
            at = int(np.searchsorted(held, key))
            if at < len(held) and held[at] == key:
                chosen.append(first + at)
        lengths.append(np.array([len(chosen)], dtype=np.int64))
        columns.append(np.array(chosen, dtype=np.int64))
        coefs.append(np.ones(len(chosen)))
        lower.append(np.array([bound_lo]))
        upper.append(np.array([bound_hi]))
        whys.append(_EXTRA)
    all_lengths = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
    return _Model(
        lo=np.concatenate(lo).astype(np.float64),
        hi=np.concatenate(hi).astype(np.float64),
        hidden=np.concatenate(hidden),
        group=np.concatenate(groups),
        version=np.concatenate(versions),
        key=np.concatenate(keys),
        starts=np.concatenate([[0], np.cumsum(all_lengths)]).astype(np.int64),
        columns=np.concatenate(columns).astype(np.int64) if columns else np.zeros(0, dtype=np.int64),
        coefs=np.concatenate(coefs) if coefs else np.zeros(0),
        lower=np.concatenate(lower) if lower else np.zeros(0),
        upper=np.concatenate(upper) if upper else np.zeros(0),
        whys=whys,
    )


@dataclass(slots=True)
class _Found:
    """A batch's answers, as arrays (cells by group index and key id) so that they travel back cheaply."""

    group: list[IntArray] = field(default_factory=list)
    version: list[IntArray] = field(default_factory=list)
    key: list[IntArray] = field(default_factory=list)
    low: list[IntArray] = field(default_factory=list)
    high: list[IntArray] = field(default_factory=list)  # -1: no upper bound
    exact: list[BoolArray] = field(default_factory=list)
    contradictions: list[tuple[int, list[tuple[int, int]], str]] = field(default_factory=list)
    variables: int = 0
    suppressed: int = 0
    components: int = 0
    lp_components: int = 0
    lp_solves: int = 0

    def add(self, model: _Model, variables: IntArray, low: FloatArray, high: FloatArray, exact: BoolArray) -> None:
        self.group.append(model.group[variables])
        self.version.append(model.version[variables])
        self.key.append(model.key[variables])
        self.low.append(np.maximum(0, np.ceil(low - _EPS)).astype(np.int64))
        self.high.append(np.where(high >= INF, -1, np.floor(np.minimum(high, 2**52) + _EPS)).astype(np.int64))
        self.exact.append(exact)

    def contradict(self, model: _Model, variables: Iterable[int], why: str) -> None:
        chosen = list(variables)
        version = int(model.version[chosen].max()) if chosen else 0
        cells = [(int(model.group[v]), int(model.key[v])) for v in chosen[:12]]
        self.contradictions.append((version, cells, why))


def _presolve(model: _Model, found: _Found) -> tuple[BoolArray, BoolArray]:
    """Substitute what the reader knows exactly; a row left with one unknown only bounds it (to whole numbers: the
    true values are counts), which may pin it, and so on. Returns the rows still joining two unknowns or more, and
    the unknowns a contradiction touched."""
    lo, hi = model.lo, model.hi
    rows = len(model.lower)
    row_of = np.repeat(np.arange(rows), np.diff(model.starts))
    columns, coefs = model.columns, model.coefs
    done = np.zeros(rows, dtype=np.bool_)
    tainted = np.zeros(len(lo), dtype=np.bool_)
    while True:
        free = lo[columns] != hi[columns]
        active = ~done[row_of]
        unknowns = np.bincount(row_of[free & active], minlength=rows)
        known = np.where(free, 0.0, coefs * np.where(free, 0.0, lo[columns]))
        const = np.bincount(row_of, weights=known, minlength=rows)
        low, high = model.lower - const, model.upper - const
        settled = ~done & (unknowns == 0)
        broken = settled & ((low > _EPS) | (high < -_EPS))
        for r in np.flatnonzero(broken):
            involved = columns[model.starts[r] : model.starts[r + 1]]
            found.contradict(model, involved.tolist(), f"{model.whys[r]}: the figures shown break it")
            tainted[involved] = True
        done |= settled
        single = ~done & (unknowns == 1)
        if not single.any():
            break
        entries = np.flatnonzero(free & single[row_of])
        rows_hit = row_of[entries]
        v, a = columns[entries], coefs[entries]
        with np.errstate(invalid="ignore", divide="ignore"):
            new_lo = np.where(a > 0, low[rows_hit] / a, high[rows_hit] / a)
            new_hi = np.where(a > 0, high[rows_hit] / a, low[rows_hit] / a)
        new_lo = np.where(np.isfinite(new_lo), np.ceil(new_lo - _EPS), -INF)
        new_hi = np.where(np.isfinite(new_hi), np.floor(new_hi + _EPS), INF)
        was_free = lo != hi
        np.maximum.at(lo, v, new_lo)
        np.minimum.at(hi, v, new_hi)
        crossed = np.flatnonzero(lo > hi)
        if len(crossed):
            for var in crossed:
                found.contradict(model, [int(var)], "no value fits what is shown")
            tainted[crossed] = True
            hi[crossed] = lo[crossed]
        done |= single
        if not (was_free & (lo == hi)).any():
            break
    return ~done, tainted


def _components(model: _Model, live: BoolArray) -> tuple[BoolArray, list[IntArray], list[IntArray]]:
    """Connected components of the unknowns the live rows join: which unknowns a live row joins, and each
    component's unknowns and rows (in the same order)."""
    lo, hi = model.lo, model.hi
    n, rows = len(lo), len(model.lower)
    row_of = np.repeat(np.arange(rows), np.diff(model.starts))
    columns = model.columns
    entries = np.flatnonzero(live[row_of] & (lo[columns] != hi[columns]))
    e_rows, e_cols = row_of[entries], columns[entries]
    label = np.arange(n)
    while True:
        row_min = np.full(rows, n)
        np.minimum.at(row_min, e_rows, label[e_cols])
        new = label.copy()
        np.minimum.at(new, e_cols, row_min[e_rows])
        new = new[new]  # pointer jumping: a label's own label is in the same component, and no larger
        if np.array_equal(new, label):
            break
        label = new
    joined = np.zeros(n, dtype=np.bool_)
    joined[e_cols] = True
    live_rows = np.flatnonzero(live)
    row_label = np.full(rows, -1)
    row_label[e_rows] = label[e_cols]
    members = np.flatnonzero(joined)
    order = np.argsort(label[members], kind="stable")
    members = members[order]
    _, var_starts = np.unique(label[members], return_index=True)
    var_split = np.split(members, var_starts[1:]) if len(members) else []
    live_labels = row_label[live_rows]
    row_order = np.argsort(live_labels, kind="stable")
    sorted_rows = live_rows[row_order]
    _, row_starts = np.unique(live_labels[row_order], return_index=True)
    row_split = np.split(sorted_rows, row_starts[1:]) if len(sorted_rows) else []
    return joined, var_split, row_split


def _solve_unit(unit: _Unit, context: _Context, exact: bool, found: _Found) -> None:
    model = _build(unit, context)
    found.variables += len(model.lo)
    found.suppressed += int(model.hidden.sum())
    live, tainted = _presolve(model, found)
    joined, var_split, row_split = _components(model, live)
    # Suppressed cells no live row joins to another unknown: their bounds are their range.
    alone = np.flatnonzero(model.hidden & ~joined & ~tainted)
    found.components += len(alone)
    found.add(model, alone, model.lo[alone], model.hi[alone], np.ones(len(alone), dtype=np.bool_))
    for variables, rows in zip(var_split, row_split, strict=True):
        targets = variables[model.hidden[variables]]
        if len(targets) == 0:
            continue
        found.components += 1
        if tainted[variables].any():
            continue
        if len(rows) == 1:
            solved = _single_row(model, int(rows[0]), targets)
        else:
            found.lp_components += 1
            solved = _solve_component(model, variables, rows, targets, exact)
        if solved is None:
            found.contradict(model, variables, "no true values fit the figures shown")
            continue
        low, high, known, solves = solved
        found.lp_solves += solves
        found.add(model, targets, low, high, known)


_Solved = tuple[FloatArray, FloatArray, BoolArray, int]


def _single_row(model: _Model, r: int, targets: IntArray) -> _Solved | None:
    """The ranges of one row's unknowns, by interval arithmetic: exact for a single row over a box (the others'
    sum takes every value between its least and its greatest), so no solver is needed. None if nothing fits.
    Plain Python: a row has a handful of terms, too few for numpy to pay its way."""
    lo, hi = model.lo, model.hi
    start, end = int(model.starts[r]), int(model.starts[r + 1])
    const = 0.0
    terms: dict[int, tuple[float, float, float]] = {}  # variable -> coefficient, least and greatest of its term
    for v, a in zip(model.columns[start:end].tolist(), model.coefs[start:end].tolist(), strict=True):
        low_v, high_v = float(lo[v]), float(hi[v])
        if low_v == high_v:
            const += a * low_v
        else:
            terms[v] = (a, a * low_v, a * high_v) if a > 0 else (a, a * high_v, a * low_v)
    low, high = float(model.lower[r]) - const, float(model.upper[r]) - const
    below = sum(1 for _, least, _ in terms.values() if least == -INF)
    above = sum(1 for _, _, greatest in terms.values() if greatest == INF)
    finite_least = sum(least for _, least, _ in terms.values() if least > -INF)
    finite_greatest = sum(greatest for _, _, greatest in terms.values() if greatest < INF)
    if (not below and finite_least > high + _EPS) or (not above and finite_greatest < low - _EPS):
        return None
    lows: list[float] = []
    highs: list[float] = []
    for v in targets.tolist():
        a, least, greatest = terms[v]
        others_least = -INF if below - (least == -INF) else finite_least - (least if least > -INF else 0.0)
        others_greatest = INF if above - (greatest == INF) else finite_greatest - (greatest if greatest < INF else 0.0)
        term_low = max(least, low - others_greatest)
        term_high = min(greatest, high - others_least)
        lows.append(term_low / a if a > 0 else term_high / a)
        highs.append(term_high / a if a > 0 else term_low / a)
    return np.array(lows), np.array(highs), np.ones(len(lows), dtype=np.bool_), 0


def _solve_component(
    model: _Model, variables: IntArray, rows: IntArray, targets: IntArray, exact: bool
) -> _Solved | None:
    """The range of each suppressed unknown of one component; None if nothing fits. Without ``exact``, a range is
    only worked out to the point where it is known to hold 11 values or more."""
    lo, hi = model.lo, model.hi
    position = np.full(len(lo), -1)
    position[variables] = np.arange(len(variables))
    pieces = [np.arange(model.starts[r], model.starts[r + 1]) for r in rows]
    lengths = np.array([len(p) for p in pieces])
    entries = np.concatenate(pieces)
    row_of = np.repeat(np.arange(len(rows)), lengths)
    columns, coefs = model.columns[entries], model.coefs[entries]
    inside = position[columns] >= 0
    const = np.bincount(row_of[~inside], weights=coefs[~inside] * lo[columns[~inside]], minlength=len(rows))
    row_lo = model.lower[rows] - const
    row_hi = model.upper[rows] - const
    starts = np.concatenate([[0], np.cumsum(np.bincount(row_of[inside], minlength=len(rows)))])
    k = len(variables)
    col_lo, col_hi = lo[variables].copy(), hi[variables].copy()
    # The bindings' class, not the highspy.Highs wrapper: that one adds Python callbacks to every instance and writes
    # a banner to the process's stdout; a component needs neither.
    highs = _Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("presolve", "off")  # presolve would discard the basis a re-solve starts from
    passed = highs.passModel(
        k,
        len(rows),
        int(inside.sum()),
        int(highspy.MatrixFormat.kRowwise),
        int(highspy.ObjSense.kMinimize),
        0.0,
        np.zeros(k),
        col_lo,
        col_hi,
        row_lo,
        row_hi,
        starts.astype(np.int32),
        position[columns[inside]].astype(np.int32),
        coefs[inside].astype(np.float64),
        np.zeros(k, dtype=np.int32),  # all continuous
    )
    if passed != highspy.HighsStatus.kOk:
        raise RuntimeError(f"HiGHS refused a component's model: {passed}")
    wanted = position[targets]
    solves = 0
    seen_min = np.full(k, INF)
    seen_max = np.full(k, -INF)
    point = np.zeros(k)

    def solve(costs: FloatArray, sense: highspy.ObjSense) -> float | None:
        """The optimum of costs . x (None: unbounded); every optimal point found is kept as a witness."""
        nonlocal solves, seen_min, seen_max, point
        chosen = np.flatnonzero(costs).astype(np.int32)
        highs.changeColsCost(len(chosen), chosen, costs[chosen])
        highs.changeObjectiveSense(sense)
        highs.run()
        solves += 1
        status = highs.getModelStatus()
        optimum = float(highs.getInfo().objective_function_value)
        if status == highspy.HighsModelStatus.kOptimal:
            point = np.asarray(highs.getSolution().col_value)
            seen_min = np.minimum(seen_min, point)
            seen_max = np.maximum(seen_max, point)
        # Read before this: changing the model clears its status.
        highs.changeColsCost(len(chosen), chosen, np.zeros(len(chosen)))
        if status == highspy.HighsModelStatus.kOptimal:
            return optimum
        if status in (highspy.HighsModelStatus.kUnbounded, highspy.HighsModelStatus.kUnboundedOrInfeasible):
            return None
        if status == highspy.HighsModelStatus.kInfeasible:
            raise _Infeasible
        raise RuntimeError(f"HiGHS: {highs.modelStatusToString(status)}")

    def wide() -> BoolArray:
        # floor(max) - ceil(min) >= 10 holds already for what has been seen: 11 values or more.
        return np.asarray(np.floor(seen_max + _EPS) - np.ceil(seen_min - _EPS) >= STALE_BY)

    def unit(i: int) -> FloatArray:
        costs = np.zeros(k)
        costs[i] = 1.0
        return costs

    low = np.zeros(len(wanted))
    high = np.zeros(len(wanted))
    known = np.ones(len(wanted), dtype=np.bool_)
    try:
        # One solve pushes every hidden unknown down at once: its point settles many minima before they are asked.
        everything = np.zeros(k)
        everything[wanted] = 1.0
        solve(everything, highspy.ObjSense.kMinimize)
        if not exact:
            # Spread: move every unknown not yet seen across 11 values away from where the last point has it,
            # each within 11 of what has been seen (so no direction runs off to infinity), all in one solve; again
            # while that settles some (on a group's history of releases, far fewer solves than one per cell).
            for _ in range(_SPREAD_ROUNDS):
                open_ = wanted[~wide()[wanted]].astype(np.int32)
                if len(open_) == 0:
                    break
                costs = np.zeros(k)
                towards_top = point[open_] - seen_min[open_] <= seen_max[open_] - point[open_]
                costs[open_] = np.where(towards_top | (point[open_] <= col_lo[open_] + _EPS), 1.0, -1.0)
                capped_lo = np.maximum(col_lo[open_], seen_min[open_] - SMALLEST_SHOWN)
                capped_hi = np.minimum(col_hi[open_], seen_max[open_] + SMALLEST_SHOWN)
                highs.changeColsBounds(len(open_), open_, capped_lo, capped_hi)
                try:
                    solve(costs, highspy.ObjSense.kMaximize)
                except _Infeasible:
                    break  # the last point fits these bounds, so only numerical trouble: the solves below decide
                finally:
                    highs.changeColsBounds(len(open_), open_, col_lo[open_], col_hi[open_])
                if int((~wide()[open_]).sum()) == len(open_):
                    break
        settled = wide()
        for n, i in enumerate(wanted):
            if not exact and settled[i]:
                low[n], high[n], known[n] = seen_min[i], seen_max[i], False
                continue
            if seen_min[i] <= col_lo[i] + _EPS:
                low[n] = col_lo[i]
            else:
                least = solve(unit(i), highspy.ObjSense.kMinimize)
                low[n] = 0.0 if least is None else least
            if col_hi[i] < INF and seen_max[i] >= col_hi[i] - _EPS:
                high[n] = col_hi[i]
            else:
                best = solve(unit(i), highspy.ObjSense.kMaximize)
                high[n] = INF if best is None else best
            settled = wide()
    except _Infeasible:
        return None
    return low, high, known, solves


_SPREAD_ROUNDS = 20


class _Infeasible(Exception):
    pass


class _Answers(NamedTuple):
    group: IntArray
    version: IntArray
    key: IntArray
    low: IntArray
    high: IntArray
    exact: BoolArray


def _solve_batch(units: list[_Unit], keys: list[LocalKey], exact: bool) -> _Found:
    """A worker's share: every unit of the batch, its answers as arrays."""
    context = _Context(keys)
    found = _Found()
    for unit in units:
        _solve_unit(unit, context, exact, found)
    return found


def _batches(units: list[_Unit], count: int) -> list[list[_Unit]]:
    """About equal work per batch, by cells."""
    sizes = [sum(len(s.keys) for g in u.groups for s in g.snapshots) for u in units]
    batches: list[list[_Unit]] = [[] for _ in range(count)]
    load = [0] * count
    for i in sorted(range(len(units)), key=lambda i: -sizes[i]):
        lightest = load.index(min(load))
        batches[lightest].append(units[i])
        load[lightest] += sizes[i]
    return [b for b in batches if b]


# A pool is worth its start-up (a fresh interpreter per worker) only for this much work.
_PARALLEL_FROM_CELLS = 100_000


def infer_shown(
    versions: Sequence[Mapping[CellId, Shown]],
    extra: Sequence[SumBound] = (),
    *,
    exact: bool = False,
    workers: int = 1,
) -> Inference:
    """Every suppressed cell's range, over all versions (in publication order, each as the reader sees it: cell ->
    shown count, or None when suppressed) and the extra bounds. Every leak's range is exact; with ``exact``, every
    other range too (slower: two solves for most cells instead of a few per component). ``workers`` > 1 solves
    groups in that many processes when there is enough work."""
    started = time.perf_counter()
    table = _KeyTable()
    units, contradictions = _units(versions, extra, table)
    workers = max(1, min(workers, os.cpu_count() or 1))
    cells = sum(len(s.keys) for u in units for g in u.groups for s in g.snapshots)
    if workers > 1 and cells >= _PARALLEL_FROM_CELLS:
        # spawn, not fork: a parent that already ran HiGHS (or an event loop) has threads a fork would not copy.
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            batches = _batches(units, workers * 3)
            results = list(pool.map(_solve_batch, batches, [table.keys] * len(batches), [exact] * len(batches)))
    else:
        results = [_solve_batch(units, table.keys, exact)]
    group_keys = {g.index: g.key for u in units for g in u.groups}
    answers = [
        _Answers(
            np.concatenate(f.group),
            np.concatenate(f.version),
            np.concatenate(f.key),
            np.concatenate(f.low),
            np.concatenate(f.high),
            np.concatenate(f.exact),
        )
        for f in results
        if f.group
    ]

    def ranges() -> Iterable[CellRange]:
        for group, version, key, low, high, known in answers:
            for g, t, k, least, most, whole in zip(
                group.tolist(), version.tolist(), key.tolist(), low.tolist(), high.tolist(), known.tolist(), strict=True
            ):
                cell = _cell(group_keys[g], table.keys[k])
                yield CellRange(cell, t, least, None if most < 0 else most, whole)

    leaks: list[Leak] = []
    for group, version, key, low, high, _ in answers:
        narrow = np.flatnonzero((high >= 0) & (high - low + 1 < SMALLEST_SHOWN))
        for i in narrow.tolist():
            cell = _cell(group_keys[int(group[i])], table.keys[int(key[i])])
            leaks.append(Leak(cell, int(version[i]), int(low[i]), int(high[i])))
    for found in results:
        for version_at, involved, why in found.contradictions:
            named = tuple(_cell(group_keys[g], table.keys[k]) for g, k in involved)
            contradictions.append(Contradiction(version_at, named, why))
    stats = InferenceStats(
        versions=len(versions),
        cells=sum(r.variables for r in results),
        suppressed=sum(r.suppressed for r in results),
        components=sum(r.components for r in results),
        lp_components=sum(r.lp_components for r in results),
        lp_solves=sum(r.lp_solves for r in results),
        seconds=time.perf_counter() - started,
    )
    leaks.sort(key=lambda leak: (leak.version, leak.cell))
    return Inference(tuple(leaks), tuple(contradictions), stats, ranges)


# --- complementary suppression ---------------------------------------------------------------------------------


class ReleaseRefused(Exception):
    """The release cannot be made safe by hiding more of it: these cells would still leak."""

    def __init__(self, leaks: Sequence[Leak], why: str) -> None:
        super().__init__(f"{why}: " + "; ".join(str(leak) for leak in leaks[:5]))
        self.leaks = tuple(leaks)


def _hiding_order(cell: CellId, figure: int) -> tuple[int, bool, CellId]:
    # The smallest shown count hides the least; a cut cell before the whole cohort's, which readers use most.
    return (figure, cell.cut == ALL, cell)


def protect(
    candidate: Mapping[CellId, CandidateCell],
    published: Sequence[Version] = (),
    *,
    extra: Sequence[SumBound] = (),
    max_iterations: int = 500,
) -> frozenset[CellId]:
    """The shown cells of ``candidate`` to hide as well, so that a reader of ``published`` (every version already
    out, in order) and of this release learns no suppressed cell to fewer than 11 values. Leaks already there
    before this release cannot be undone and are not counted against it. Complementary cells are chosen across
    every cut of the candidate's groups (site x indication x route x month), one at a time per leak, next to a
    leaking cell, never a 0. Raises ReleaseRefused when that cannot be done within ``max_iterations`` rounds."""
    groups = {cell.group for cell in candidate}
    before = [{c: s for c, s in shown_version(v).items() if c.group in groups} for v in published]
    now = len(before)
    baseline = {(leak.cell, leak.version) for leak in infer_shown(before, extra).leaks} if before else set()
    partners: dict[CellId, set[CellId]] = defaultdict(set)
    for relation in relations(list(candidate)):
        for cell, _ in relation.terms:
            partners[cell].update(c for c, _ in relation.terms if c != cell)
    hidden: set[CellId] = set()

    def release() -> dict[CellId, Shown]:
        return {c: None if k.suppressed or c in hidden else k.figure for c, k in candidate.items()}

    def may_hide(cell: CellId) -> bool:
        # Never a 0: hidden, it bounds nothing below what a shown 0 does, and a reader pins it back to 0..0.
        found = candidate.get(cell)
        return found is not None and not found.suppressed and cell not in hidden and found.figure > 0

    def complement(leak: Leak) -> CellId | None:
        """The best cell to hide for this leak: a shown cell of this release in a relation with the leaking cell
        (or the cell itself, when it leaks at an earlier version through what it shows now), else one a relation
        further out, and so on."""
        frontier = {leak.cell}
        seen = set(frontier)
        choices = [leak.cell] if may_hide(leak.cell) else []
        while True:
            reach = {p for c in frontier for p in partners.get(c, ())} - seen
            choices += [c for c in reach if may_hide(c)]
            if choices:
                return min(choices, key=lambda c: _hiding_order(c, candidate[c].figure))
            if not reach:
                return None
            seen |= reach
            frontier = reach

    for _ in range(max_iterations):
        inference = infer_shown([*before, release()], extra)
        if inference.contradictions:
            raise ReleaseRefused(inference.leaks, f"the release contradicts the rules: {inference.contradictions[0]}")
        leaks = [leak for leak in inference.leaks if (leak.cell, leak.version) not in baseline]
        if not leaks:
            return frozenset(hidden)
        # The narrowest leak first: it is the one the reader knows best. One cell is hidden per leak, and only for
        # leaks no cell hidden this round is next to (that cell may be enough for them too): a round then serves
        # every separate leak of a group at once, each one cell at a time.
        leaks.sort(key=lambda leak: ((leak.high - leak.low), leak.version != now, leak.cell))
        near: set[CellId] = set()
        unplaced: list[Leak] = []
        for leak in leaks:
            if leak.cell in near:
                continue
            choice = complement(leak)
            if choice is None:
                unplaced.append(leak)
                continue
            hidden.add(choice)
            near |= {leak.cell, choice} | partners.get(leak.cell, set()) | partners.get(choice, set())
        if unplaced and not near:
            raise ReleaseRefused(unplaced, "no shown cell left to hide next to these leaks")
    final = infer_shown([*before, release()], extra)
    raise ReleaseRefused(
        [leak for leak in final.leaks if (leak.cell, leak.version) not in baseline],
        f"still leaking after {max_iterations} rounds",
    )
