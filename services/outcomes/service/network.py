"""Network role use cases: take in a site's cohort outcomes, load them by a selection, and compute the network's
figures (domain/network_view.py).

The network holds nothing of its own: every row is the latest of what a site published on the compacted network
topic. A network database that is new, or was wiped, comes back with the same rows by reading the topic again
(the consumer's ``rebuild_forgotten_partitions``, shared/bus/consumer.py); ``replaces`` keeps a replay from
putting an older publication back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import col, select

from services.outcomes.domain.network_view import (
    InstrumentName,
    NetworkTotals,
    TrendPoint,
    cohort_id,
    replaces,
    totals,
    trend,
)
from services.outcomes.fhir.measure_reports import reported_measures
from services.outcomes.fhir.measures import MEASURES
from services.outcomes.models import CohortKeyColumns, NetworkCohortOutcome, NetworkMeasureReport
from shared.bus.consumer import PoisonEvent
from shared.bus.tables import utcnow
from shared.db.bulk import insert_rows
from shared.db.unit_of_work import UnitOfWork
from shared.errors import RuleRefused
from shared.events.outcomes import CohortCut, CohortOutcomesPublished
from shared.privacy.release import release_rules_broken
from shared.treatment import Indication, Route

log = logging.getLogger(__name__)

PERIOD_PATTERN = r"^\d{4}-\d{2}$"


async def record_cohort_outcomes(uow: UnitOfWork, event: CohortOutcomesPublished) -> bool:
    """Keep the latest publication of a cohort. True if this one is now held (the first, or newer). A release
    that breaks the release rules is refused (dead-lettered by the consumer) and never served."""
    await uow.lock(_cohort_lock(cohort_key(event)))  # before the row is read: the index check waits, or we do
    key = (event.site, event.indication, event.route, event.period, event.cut, event.cut_value)
    row = await uow.session.get(NetworkCohortOutcome, key)
    if row is not None and not replaces(row.generated_at, event.generated_at):
        log.info("cohort %s: an older publication (%s) is not taken in", row.cohort_id, event.generated_at)
        return False
    held = CohortOutcomesPublished.model_validate(row.outcomes) if row is not None else None
    broken = release_rules_broken(held, event)
    if broken:
        raise PoisonEvent(f"cohort {event.cohort_key} breaks the release rules: {'; '.join(broken)}")
    # A cohort held before has index rows to forget; a new one has none (they are written only with their cohort).
    forget = [] if row is None else [cohort_key(event)]
    if row is None:
        row = NetworkCohortOutcome(
            site=event.site,
            indication=event.indication,
            route=event.route,
            period=event.period,
            cut=event.cut,
            cut_value=event.cut_value,
            cohort_id=cohort_id(event.cohort_key),
            generated_at=event.generated_at,
            outcomes={},
            received_at=utcnow(),
        )
    row.generated_at, row.received_at = event.generated_at, utcnow()
    row.outcomes = event.model_dump(mode="json")
    uow.session.add(row)
    with uow.session.no_autoflush:  # the row is written with the transaction's others, not alone before these
        await _index_reports(uow, [event], forget=forget)
    return True


class CohortSelection(BaseModel):
    """Which cohorts: every criterion left out matches all. A period range is inclusive, by month."""

    model_config = ConfigDict(frozen=True)

    site: str | None = None
    indication: Indication | None = None
    route: Route | None = None
    period: str | None = Field(default=None, pattern=PERIOD_PATTERN)
    period_from: str | None = Field(default=None, pattern=PERIOD_PATTERN)
    period_to: str | None = Field(default=None, pattern=PERIOD_PATTERN)
    cut: CohortCut | None = None
    cut_value: str | None = None


def published(outcomes: dict[str, Any]) -> CohortOutcomesPublished:
    # Re-validated on the way out: only the published, suppressed shape can leave the network.
    return CohortOutcomesPublished.model_validate(outcomes)


# What a read of cohorts selects: the publication as held, not the whole row (a cohort is served from it alone).
HELD_OUTCOMES = sa.select(col(NetworkCohortOutcome.outcomes))


# A cohort's key, in the order the list is kept: the table's primary key, so a page starts from an index seek.
CohortKey = tuple[str, str, str, str, str, str]
CohortTable = type[NetworkCohortOutcome] | type[NetworkMeasureReport]


def _key_columns(table: CohortTable) -> tuple[Any, ...]:
    return tuple(col(getattr(table, name)) for name in CohortKeyColumns.model_fields)


COHORT_KEY_COLUMNS = _key_columns(NetworkCohortOutcome)
# Each key column's length: a cursor whose key would not fit is not one this list gave.
COHORT_KEY_LENGTHS = tuple(
    column.type.length or 0
    for column in sa.inspect(NetworkCohortOutcome).primary_key  # the same columns in the same order
    if isinstance(column.type, sa.String)
)


def cohort_key(cohort: CohortOutcomesPublished) -> CohortKey:
    return (cohort.site, cohort.indication.value, cohort.route.value, cohort.period, cohort.cut, cohort.cut_value)


Query = TypeVar("Query", bound=sa.Select[Any])


def _selected(query: Query, table: CohortTable, selection: CohortSelection) -> Query:
    """``query`` narrowed to the selected cohorts, on either table keyed by a cohort (the same key columns)."""
    chosen = (
        selection.site,
        selection.indication,
        selection.route,
        selection.period,
        selection.cut,
        selection.cut_value,
    )
    for column, value in zip(_key_columns(table), chosen, strict=True):
        if value is not None:
            query = query.where(column == value)
    if selection.period_from is not None:
        query = query.where(col(table.period) >= selection.period_from)
    if selection.period_to is not None:
        query = query.where(col(table.period) <= selection.period_to)
    return query


async def cohort_outcomes(
    uow: UnitOfWork, selection: CohortSelection, *, after: CohortKey | None = None, limit: int | None = None
) -> list[CohortOutcomesPublished]:
    """The cohorts selected, by site, indication, route, month, cut and cut value; with ``after`` and ``limit``,
    one page of them: at most ``limit``, those whose key comes after ``after``."""
    query = _selected(HELD_OUTCOMES, NetworkCohortOutcome, selection)
    if after is not None:
        query = query.where(sa.tuple_(*COHORT_KEY_COLUMNS) > sa.tuple_(*(sa.literal(k) for k in after)))
    query = query.order_by(*COHORT_KEY_COLUMNS)
    if limit is not None:
        query = query.limit(limit)
    return [published(outcomes) for (outcomes,) in (await uow.session.execute(query)).all()]


async def cohort_outcome(uow: UnitOfWork, cohort: str) -> CohortOutcomesPublished | None:
    """One cohort by its cohort_id."""
    found = await uow.session.execute(HELD_OUTCOMES.where(col(NetworkCohortOutcome.cohort_id) == cohort))
    outcomes = found.scalar_one_or_none()
    return None if outcomes is None else published(outcomes)


# The MeasureReports a search pages through, in order: by cohort key, then by measure id.
ReportEntry = tuple[CohortKey, str]
REPORT_KEY_COLUMNS = _key_columns(NetworkMeasureReport)
INDEX_TABLE = cast(sa.Table, sa.inspect(NetworkMeasureReport).local_table)
INDEX_KEY_COLUMNS = [INDEX_TABLE.c[name] for name in CohortKeyColumns.model_fields]
# What a read of the index selects: the cohort's key and the measure, in this order.
INDEX_ROWS = sa.select(*REPORT_KEY_COLUMNS, col(NetworkMeasureReport.measure))
# Cohorts the index check judges at a time (and, for those it corrects, locks at once).
MEASURE_INDEX_CHECK_CHUNK = 200
# Keys matched by one statement, ORed: SQLite refuses an expression more than 1,000 deep (990 keys passed, 1,000
# failed with "Expression tree is too large", SQLite 3.40).
KEYS_PER_STATEMENT = 500


def _cohort_lock(key: CohortKey) -> str:
    """The lock a take-in of this cohort holds, and the index check takes before it corrects the cohort's rows."""
    return "network cohort " + "|".join(key)


def _any_of_keys(columns: Sequence[Any], keys: Sequence[CohortKey]) -> sa.ColumnElement[bool]:
    # Equalities ORed, not a row-value IN: SQLite reads a row-value IN list by scanning the whole primary key
    # (measured: 3.5 ms at 16,000 cohorts, for 2 keys), the ORed equalities by a seek per key.
    return sa.or_(*(sa.and_(*(column == value for column, value in zip(columns, key, strict=True))) for key in keys))


def _report_rows(cohort: CohortOutcomesPublished) -> list[dict[str, str]]:
    key = dict(zip(CohortKeyColumns.model_fields, cohort_key(cohort), strict=True))
    return [{**key, "measure": measure.id} for measure in reported_measures(cohort)]


async def _index_reports(
    uow: UnitOfWork, cohorts: Sequence[CohortOutcomesPublished], forget: Sequence[CohortKey]
) -> None:
    """Forget the index rows of the cohorts ``forget``, then index the MeasureReports of ``cohorts``."""
    # Through the table, not the ORM: nothing of it is held as objects, and the ORM's bookkeeping for a bulk
    # DELETE and INSERT doubled what a take-in cost (bench/measure_reports.py).
    for start in range(0, len(forget), KEYS_PER_STATEMENT):
        keyed = _any_of_keys(INDEX_KEY_COLUMNS, forget[start : start + KEYS_PER_STATEMENT])
        await uow.session.execute(INDEX_TABLE.delete().where(keyed))
    rows = [row for cohort in cohorts for row in _report_rows(cohort)]
    await insert_rows(uow.session, uow.database.dialect, INDEX_TABLE, rows, skip_existing=True)


def _reports_where(selection: CohortSelection, measure: str | None) -> Any:
    query = _selected(INDEX_ROWS, NetworkMeasureReport, selection)
    # Only measures this code defines: a row of another (left by an older or newer release until the index
    # check has run) would count in the total and then be missing from its page.
    measures = list(MEASURES) if measure is None else [measure]
    return query.where(col(NetworkMeasureReport.measure).in_(measures))


async def measure_report_total(uow: UnitOfWork, selection: CohortSelection, measure: str | None) -> int:
    """How many MeasureReports the selected cohorts have (of ``measure`` alone, when given)."""
    matching = _reports_where(selection, measure).subquery()
    return int((await uow.session.exec(select(sa.func.count()).select_from(matching))).one())


async def measure_report_page(
    uow: UnitOfWork, selection: CohortSelection, measure: str | None, *, offset: int, limit: int
) -> list[ReportEntry]:
    """One page of the selected cohorts' MeasureReports: which cohort and which measure, in the search's order."""
    query = _reports_where(selection, measure)
    query = query.order_by(*REPORT_KEY_COLUMNS, col(NetworkMeasureReport.measure)).offset(offset).limit(limit)
    return [(_key(row[:6]), row[6]) for row in (await uow.session.execute(query)).all()]


def _key(columns: Sequence[Any]) -> CohortKey:
    site, indication, route, period, cut, cut_value = (str(value) for value in columns)
    return (site, indication, route, period, cut, cut_value)


async def cohorts_keyed(uow: UnitOfWork, keys: Sequence[CohortKey]) -> dict[CohortKey, CohortOutcomesPublished]:
    """The held cohorts of these keys (a key no longer held is left out)."""
    found: dict[CohortKey, CohortOutcomesPublished] = {}
    unique = sorted(set(keys))
    for start in range(0, len(unique), KEYS_PER_STATEMENT):
        query = HELD_OUTCOMES.where(_any_of_keys(COHORT_KEY_COLUMNS, unique[start : start + KEYS_PER_STATEMENT]))
        for (outcomes,) in (await uow.session.execute(query)).all():
            cohort = published(outcomes)
            found[cohort_key(cohort)] = cohort
    return found


async def check_measure_index(unit_of_work: Callable[[], UnitOfWork]) -> int:
    """Make the MeasureReport index agree with the cohorts held, as the running code judges them: rows a cohort
    no longer has (or of a cohort no longer held) go, rows it now has come. The number of cohorts corrected.
    Needed because which measures a cohort reports is the code's rule: a new measure, or a changed one, is
    indexed over the cohorts already held, and so are cohorts an older release took in without an index during
    a rolling upgrade. A chunk of cohorts per transaction; the cohorts found wrong are judged again under the
    lock a take-in of them holds, taken only where free: the check never waits on a take-in (nor deadlocks with
    one), and a take-in waits at most for one chunk's fix."""
    corrected, after, done = 0, None, False
    while not done:
        async with unit_of_work() as uow:
            chunk = await cohort_outcomes(uow, CohortSelection(), after=after, limit=MEASURE_INDEX_CHECK_CHUNK)
            done = len(chunk) < MEASURE_INDEX_CHECK_CHUNK
            in_range = _reports_in_range(after, None if done else cohort_key(chunk[-1]))
            wrong = _misindexed(chunk, await _indexed(uow, in_range))
            if wrong:
                # A cohort being taken in meanwhile is left to its take-in, which indexes it as this code does.
                free = await uow.lock_those_free(*(_cohort_lock(key) for key in wrong))
                keys = sorted(key for key in wrong if _cohort_lock(key) in free)
                held = list((await cohorts_keyed(uow, keys)).values())
                indexed: dict[CohortKey, set[str]] = {}
                for start in range(0, len(keys), KEYS_PER_STATEMENT):
                    keyed = _any_of_keys(REPORT_KEY_COLUMNS, keys[start : start + KEYS_PER_STATEMENT])
                    indexed.update(await _indexed(uow, INDEX_ROWS.where(keyed)))
                wrong = _misindexed(held, indexed)
                await _index_reports(uow, [c for c in held if cohort_key(c) in wrong], forget=sorted(wrong))
                await uow.commit()
        corrected += len(wrong)
        after = cohort_key(chunk[-1]) if chunk else None
    return corrected


async def _indexed(uow: UnitOfWork, query: Any) -> dict[CohortKey, set[str]]:
    indexed: dict[CohortKey, set[str]] = {}
    for row in (await uow.session.execute(query)).all():
        indexed.setdefault(_key(row[:6]), set()).add(row[6])
    return indexed


def _misindexed(cohorts: Sequence[CohortOutcomesPublished], indexed: dict[CohortKey, set[str]]) -> set[CohortKey]:
    """The keys whose index rows are not the measures their cohort reports (none, for a cohort not held)."""
    wanted = {cohort_key(c): {m.id for m in reported_measures(c)} for c in cohorts}
    return {key for key in wanted.keys() | indexed.keys() if wanted.get(key, set()) != indexed.get(key, set())}


def _reports_in_range(after: CohortKey | None, through: CohortKey | None) -> Any:
    """The index rows of cohorts whose key comes after ``after`` and not after ``through`` (None: no bound)."""
    query = INDEX_ROWS
    key = sa.tuple_(*REPORT_KEY_COLUMNS)
    if after is not None:
        query = query.where(key > sa.tuple_(*(sa.literal(k) for k in after)))
    if through is not None:
        query = query.where(key <= sa.tuple_(*(sa.literal(k) for k in through)))
    return query


def _one_cut_value(selection: CohortSelection) -> tuple[CohortCut, str]:
    """A sum is over one cut value: a cut without its value would match nothing and answer "no data"."""
    cut = selection.cut or "all"
    if cut != "all" and selection.cut_value is None:
        raise RuleRefused(f"cut_value is required with cut {cut!r} (e.g. cut={cut}&cut_value=...)")
    return cut, selection.cut_value or "all"


async def network_totals(uow: UnitOfWork, selection: CohortSelection) -> NetworkTotals:
    """One cut value's cohorts summed across sites (default: the whole cohorts, cut 'all')."""
    cut, cut_value = _one_cut_value(selection)
    chosen = selection.model_copy(update={"cut": cut, "cut_value": cut_value})
    return totals(await cohort_outcomes(uow, chosen), cut, cut_value)


async def network_trend(
    uow: UnitOfWork, selection: CohortSelection, instrument: InstrumentName | None = None
) -> list[TrendPoint]:
    cut, cut_value = _one_cut_value(selection)
    chosen = selection.model_copy(update={"cut": cut, "cut_value": cut_value})
    return trend(await cohort_outcomes(uow, chosen), cut, cut_value, instrument)


# --- the consumer that rebuilds -------------------------------------------------------------------------------
