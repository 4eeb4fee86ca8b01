"""The release rules: when a site's aggregates cross to the network, and how a figure may change between two
releases. Written once; the site's outcomes service calls them to release, and the network calls them to
re-check what it receives. The reasoning is in docs/privacy.md.

1. Cadence: a site releases at most once per release period (a site setting, daily by default), at the first
   beat of the period, with what it knew then. Changes during a period wait for the next one, so the network
   learns only that something changed in the period before, never when.
2. Times: every time that crosses (the payload's ``generated_at``, the CloudEvent ``time`` and the Kafka
   timestamp, which the relay takes from it) is the release period's boundary, midnight UTC. Figures themselves
   are by month.
3. Steps: a shown count changes between releases only by 11 or more; a smaller change waits (the last released
   figure stays) until the count has moved 11 or more from it. Differencing two releases then shows a group of at
   least 11 courses, never one. A mean or median moves only with the count it stands over.
4. Counts 1-10 are suppressed on their raw values before anything else (shared/privacy/__init__.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum

from shared.events.outcomes import (
    AdverseEventFigures,
    AggregateCell,
    BarrierFigures,
    CohortAggregatePublished,
    CohortOutcomesPublished,
    InstrumentFigures,
    ReleasedCount,
)
from shared.privacy import SMALLEST_SHOWN_COUNT
from shared.privacy.cells import ALL, CandidateCell, CellId, cells_of_all, relations

# The smallest change of a shown figure between two releases: the same 11 as the smallest shown count.
SMALLEST_STEP = SMALLEST_SHOWN_COUNT
# A part within this of its whole pins the whole to fewer than 11 values from below.
STALE_OR_EXACT = SMALLEST_SHOWN_COUNT - 1


class ReleasePeriod(StrEnum):
    day = "day"
    week = "week"
    month = "month"
    # Development and tests only (refused in production): every beat may release, still stamped with the day's
    # boundary and still held to the step rule.
    beat = "beat"


def release_boundary(now: datetime, period: ReleasePeriod) -> datetime:
    """The start of the release period ``now`` falls in: midnight UTC of the day, of the ISO week's Monday, or of
    the month's first day."""
    day = now.astimezone(UTC).date()
    if period is ReleasePeriod.week:
        day -= timedelta(days=day.weekday())
    elif period is ReleasePeriod.month:
        day = day.replace(day=1)
    return datetime.combine(day, time(0), tzinfo=UTC)


def release_due(last_released_for: datetime | None, now: datetime, period: ReleasePeriod) -> bool:
    """Whether a site may release now: once per period (every beat in development's ``beat``)."""
    if period is ReleasePeriod.beat or last_released_for is None:
        return True
    return release_boundary(now, period) > last_released_for


def is_release_boundary(moment: datetime) -> bool:
    """A time that may cross the boundary: midnight UTC, nothing finer (it dates no single patient's event)."""
    if moment.tzinfo is None:
        return False
    return moment.astimezone(UTC).timetz() == time(0, tzinfo=UTC)


def held_count(last: ReleasedCount | None, candidate: ReleasedCount) -> ReleasedCount:
    """What to release of one count, given what was last released of it and what its raw value allows now.

    A count shown before stays as it was until it has moved by 11 or more; a count that is now suppressed is
    suppressed at once (a count that fell to 1-10, or is hidden as a complement, is never shown)."""
    if last is None or last.count is None or candidate.count is None:
        return candidate
    return candidate if abs(candidate.count - last.count) >= SMALLEST_STEP else last


def step_allowed(last: ReleasedCount | None, now: ReleasedCount) -> bool:
    """The network's re-check of the step rule: a shown count stays, or moves by 11 or more."""
    if last is None or last.count is None or now.count is None:
        return True
    return now.count == last.count or abs(now.count - last.count) >= SMALLEST_STEP


def _moved(last: ReleasedCount | None, now: ReleasedCount) -> bool:
    return last is None or last != now


def _per_100(part: ReleasedCount, whole: ReleasedCount) -> float | None:
    if part.count is None or not whole.count:
        return None
    return round(part.count * 100 / whole.count, 1)


def _held_instrument(last: InstrumentFigures | None, candidate: InstrumentFigures) -> InstrumentFigures:
    with_result = held_count(last.with_result if last else None, candidate.with_result)
    responded = held_count(last.responded if last else None, candidate.responded)
    remitted = held_count(last.remitted if last else None, candidate.remitted)
    # A mean over the same released count as before stays as it was: a new mean over an unchanged count would
    # show how one course's score moved.
    changes = candidate if last is None or _moved(last.with_result, with_result) else last
    times = candidate if last is None or _moved(last.responded, responded) else last
    return InstrumentFigures(
        instrument=candidate.instrument,
        with_result=with_result,
        responded=responded,
        remitted=remitted,
        mean_change=changes.mean_change if with_result.count is not None else None,
        median_change=changes.median_change if with_result.count is not None else None,
        median_hours_to_response=times.median_hours_to_response if responded.count is not None else None,
        median_days_to_response=times.median_days_to_response if responded.count is not None else None,
    )


def held_release(last: CohortOutcomesPublished | None, candidate: CohortOutcomesPublished) -> CohortOutcomesPublished:
    """A cohort's figures as they may be released after ``last``: every count held to the step rule, every mean
    and median moved only with its count, every rate computed from the released counts."""
    if last is None:
        return candidate
    courses = held_count(last.courses, candidate.courses)
    started = held_count(last.started, candidate.started)
    last_instruments = {i.instrument: i for i in last.instruments}
    last_adverse = {a.type: a for a in last.adverse_events}
    last_barriers = {b.reason: b for b in last.barriers}
    adverse = []
    for figures in candidate.adverse_events:
        before = last_adverse.get(figures.type)
        with_it = held_count(before.courses if before else None, figures.courses)
        adverse.append(
            AdverseEventFigures(
                type=figures.type,
                courses=with_it,
                per_100_courses=_per_100(with_it, started),
                serious_courses=held_count(before.serious_courses if before else None, figures.serious_courses),
            )
        )
    barriers = []
    for barrier in candidate.barriers:
        before_barrier = last_barriers.get(barrier.reason)
        hit = held_count(before_barrier.courses if before_barrier else None, barrier.courses)
        cost_from = barrier if before_barrier is None or _moved(before_barrier.courses, hit) else before_barrier
        barriers.append(
            BarrierFigures(
                reason=barrier.reason,
                courses=hit,
                median_out_of_pocket_cents=cost_from.median_out_of_pocket_cents if hit.count is not None else None,
            )
        )
    waits_from = candidate if _moved(last.started, started) else last
    return candidate.model_copy(
        update={
            "courses": courses,
            "started": started,
            "completed": held_count(last.completed, candidate.completed),
            "dropped_out": held_count(last.dropped_out, candidate.dropped_out),
            "instruments": [_held_instrument(last_instruments.get(i.instrument), i) for i in candidate.instruments],
            "adverse_events": adverse,
            "barriers": barriers,
            "median_days_to_first_dose": waits_from.median_days_to_first_dose if started.count is not None else None,
        }
    )


def _as_count(cell: AggregateCell) -> ReleasedCount:
    return ReleasedCount(suppressed=True) if cell.suppressed else ReleasedCount(count=cell.count)


def _as_cell(period: str, count: ReleasedCount) -> AggregateCell:
    if count.count is None:
        return AggregateCell(period=period, suppressed=True)
    return AggregateCell(period=period, count=count.count)


def held_cells(last: list[AggregateCell] | None, candidate: list[AggregateCell]) -> list[AggregateCell]:
    """The registrations aggregate's month cells (and its total), each held to the step rule."""
    before = {cell.period: _as_count(cell) for cell in last or []}
    return [_as_cell(cell.period, held_count(before.get(cell.period), _as_count(cell))) for cell in candidate]


Released = CohortOutcomesPublished | CohortAggregatePublished


def release_rules_broken(last: Released | None, now: Released) -> list[str]:
    """What the network refuses in a release: a time finer than the period boundary, or a shown count that moved
    by 1 to 10 from the version it holds (the counts 1-10 themselves are refused by the event's model)."""
    broken = []
    if not is_release_boundary(now.generated_at):
        broken.append(f"generated_at {now.generated_at.isoformat()} is not a release boundary (midnight UTC)")
    if last is not None:
        before = cells_of_all([last])
        for cell, count in cells_of_all([now]).items():
            if not step_allowed(before.get(cell), count):
                broken.append(f"{cell.measure} moved from {before[cell].count} to {count.count}: a step under 11")
    return broken


def suppressing(figures: CohortOutcomesPublished, measures: Collection[str]) -> CohortOutcomesPublished:
    """The cohort's figures with the counts named (cells.py's measure names) hidden as complements, and every
    mean, median or rate that stood over one of them dropped with it."""
    if not measures:
        return figures
    hidden = ReleasedCount(suppressed=True)

    def count(measure: str, released: ReleasedCount) -> ReleasedCount:
        return hidden if measure in measures else released

    started = count("started", figures.started)
    instruments = []
    for figure in figures.instruments:
        name = figure.instrument
        with_result = count(f"{name}.with_result", figure.with_result)
        responded = count(f"{name}.responded", figure.responded)
        times_shown = responded.count is not None
        instruments.append(
            figure.model_copy(
                update={
                    "with_result": with_result,
                    "responded": responded,
                    "remitted": count(f"{name}.remitted", figure.remitted),
                    "mean_change": figure.mean_change if with_result.count is not None else None,
                    "median_change": figure.median_change if with_result.count is not None else None,
                    "median_hours_to_response": figure.median_hours_to_response if times_shown else None,
                    "median_days_to_response": figure.median_days_to_response if times_shown else None,
                }
            )
        )
    adverse = []
    for event in figures.adverse_events:
        courses = count(f"adverse.{event.type.value}.courses", event.courses)
        adverse.append(
            event.model_copy(
                update={
                    "courses": courses,
                    "per_100_courses": _per_100(courses, started),
                    "serious_courses": count(f"adverse.{event.type.value}.serious", event.serious_courses),
                }
            )
        )
    barriers = []
    for barrier in figures.barriers:
        hit = count(f"barrier.{barrier.reason}.courses", barrier.courses)
        barriers.append(
            barrier.model_copy(
                update={
                    "courses": hit,
                    "median_out_of_pocket_cents": barrier.median_out_of_pocket_cents if hit.count is not None else None,
                }
            )
        )
    return figures.model_copy(
        update={
            "courses": count("courses", figures.courses),
            "started": started,
            "completed": count("completed", figures.completed),
            "dropped_out": count("dropped_out", figures.dropped_out),
            "instruments": instruments,
            "adverse_events": adverse,
            "barriers": barriers,
            "median_days_to_first_dose": figures.median_days_to_first_dose if started.count is not None else None,
        }
    )


def complements_by_table(candidate: Mapping[CellId, CandidateCell]) -> set[CellId]:
    """A first choice of complementary cells, by the tables' structure alone, so that the linear programs of
    ``protect`` (which then verifies, and adds any cell still needed) start from a release that is nearly safe
    rather than adding one cell per round. Where a cut of one measure hides exactly one cell and shows its whole,
    the smallest non-zero shown cell of the same cut is hidden too (the classic second cell), with every part of
    it within 10 of it in its own cohort (a started of 39 under a hidden courses of 39 would pin it)."""
    hidden = {cell for cell, known in candidate.items() if known.suppressed}
    added: set[CellId] = set()
    found = relations(list(candidate))
    parts: dict[CellId, list[CellId]] = defaultdict(list)
    sums = []
    for relation in found:
        whole = relation.terms[-1][0]
        members = [cell for cell, _ in relation.terms[:-1]]
        if whole.cut == ALL and all(cell.cut != ALL for cell in members):
            sums.append((whole, members))
        else:
            for cell in members:
                parts[whole].append(cell)

    def hide(cell: CellId) -> None:
        added.add(cell)
        hidden.add(cell)
        figure = candidate[cell].figure
        for part in parts.get(cell, []):
            # A 0 hidden says nothing more than a 0 shown, and could only be pinned back to 0.
            if part not in hidden and candidate[part].figure > 0 and candidate[part].figure >= figure - STALE_OR_EXACT:
                hide(part)

    changed = True
    while changed:
        changed = False
        for whole, members in sums:
            hidden_members = [cell for cell in members if cell in hidden]
            if whole in hidden or len(hidden_members) != 1:
                continue
            shown = [cell for cell in members if cell not in hidden and candidate[cell].figure > 0]
            if shown:
                hide(min(shown, key=lambda cell: (candidate[cell].figure, cell)))
                changed = True
    return added
