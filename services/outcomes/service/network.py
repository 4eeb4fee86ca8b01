"""Network role use cases: take in a site's cohort outcomes, load them by a selection, and compute the network's
figures (domain/network_view.py).

The network holds nothing of its own: every row is the latest of what a site published on the compacted network
topic. A network database that is new, or was wiped, comes back with the same rows by reading the topic again
(the consumer's ``rebuild_forgotten_partitions``, shared/bus/consumer.py); ``replaces`` keeps a replay from
putting an older publication back.
"""

from __future__ import annotations

import logging

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
from services.outcomes.models import NetworkCohortOutcome
from shared.bus.consumer import PoisonEvent
from shared.bus.tables import utcnow
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
    key = (event.site, event.indication, event.route, event.period, event.cut, event.cut_value)
    row = await uow.session.get(NetworkCohortOutcome, key)
    if row is not None and not replaces(row.generated_at, event.generated_at):
        log.info("cohort %s: an older publication (%s) is not taken in", row.cohort_id, event.generated_at)
        return False
    held = CohortOutcomesPublished.model_validate(row.outcomes) if row is not None else None
    broken = release_rules_broken(held, event)
    if broken:
        raise PoisonEvent(f"cohort {event.cohort_key} breaks the release rules: {'; '.join(broken)}")
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


def published(row: NetworkCohortOutcome) -> CohortOutcomesPublished:
    # Re-validated on the way out: only the published, suppressed shape can leave the network.
    return CohortOutcomesPublished.model_validate(row.outcomes)


# A cohort's key, in the order the list is kept: the table's primary key, so a page starts from an index seek.
CohortKey = tuple[str, str, str, str, str, str]
COHORT_KEY_COLUMNS = (
    col(NetworkCohortOutcome.site),
    col(NetworkCohortOutcome.indication),
    col(NetworkCohortOutcome.route),
    col(NetworkCohortOutcome.period),
    col(NetworkCohortOutcome.cut),
    col(NetworkCohortOutcome.cut_value),
)
# Each key column's length: a cursor whose key would not fit is not one this list gave.
COHORT_KEY_LENGTHS = tuple(
    column.type.length or 0
    for column in sa.inspect(NetworkCohortOutcome).primary_key  # the same columns in the same order
    if isinstance(column.type, sa.String)
)


def cohort_key(cohort: CohortOutcomesPublished) -> CohortKey:
    return (cohort.site, cohort.indication.value, cohort.route.value, cohort.period, cohort.cut, cohort.cut_value)


async def cohort_outcomes(
    uow: UnitOfWork, selection: CohortSelection, *, after: CohortKey | None = None, limit: int | None = None
) -> list[CohortOutcomesPublished]:
    """The cohorts selected, by site, indication, route, month, cut and cut value; with ``after`` and ``limit``,
    one page of them: at most ``limit``, those whose key comes after ``after``."""
    query = select(NetworkCohortOutcome)
    table = NetworkCohortOutcome
    for column, value in (
        (table.site, selection.site),
        (table.indication, selection.indication),
        (table.route, selection.route),
        (table.period, selection.period),
        (table.cut, selection.cut),
        (table.cut_value, selection.cut_value),
    ):
        if value is not None:
            query = query.where(col(column) == value)
    if selection.period_from is not None:
        query = query.where(col(table.period) >= selection.period_from)
    if selection.period_to is not None:
        query = query.where(col(table.period) <= selection.period_to)
    if after is not None:
        query = query.where(sa.tuple_(*COHORT_KEY_COLUMNS) > sa.tuple_(*(sa.literal(k) for k in after)))
    query = query.order_by(*COHORT_KEY_COLUMNS)
    if limit is not None:
        query = query.limit(limit)
    return [published(row) for row in (await uow.session.exec(query)).all()]


async def cohort_outcome(uow: UnitOfWork, cohort: str) -> CohortOutcomesPublished | None:
    """One cohort by its cohort_id."""
    found = await uow.session.exec(select(NetworkCohortOutcome).where(col(NetworkCohortOutcome.cohort_id) == cohort))
    row = found.first()
    return None if row is None else published(row)


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
