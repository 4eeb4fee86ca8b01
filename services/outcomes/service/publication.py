"""Outcomes' publication to the network: the registrations per month, and the cohort outcomes. Only what
would be shown is compared with what was last sent, so a change hidden by suppression publishes nothing and a
new aggregate's timing never betrays a single small-count change."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict
from sqlmodel import col, select

from services.outcomes.domain.cohorts import CohortKey, aggregate, cohort_aggregates
from services.outcomes.domain.course_record import CourseTrajectory
from services.outcomes.domain.registrations import REGISTRATIONS_COHORT, fingerprint, registrations_by_month
from services.outcomes.models import NetworkAggregate, PublishedAggregate, Registration
from shared.bus.tables import utcnow
from shared.db.unit_of_work import UnitOfWork
from shared.events.outcomes import CohortAggregatePublished, CohortOutcomesPublished


async def publish_site_aggregates(uow: UnitOfWork, site: str) -> bool:
    """Recompute the site's aggregate and publish it if what would be shown changed. True if published."""
    months = (await uow.session.exec(select(Registration.registered_month))).all()
    cells, total = registrations_by_month(months)
    current = fingerprint(cells, total)
    last = await uow.session.get(PublishedAggregate, REGISTRATIONS_COHORT)
    if last is not None and last.fingerprint == current:
        return False
    now = utcnow()
    await uow.publish(
        CohortAggregatePublished(
            site=site,
            cohort=REGISTRATIONS_COHORT,
            measure="patients_registered",
            cells=cells,
            total=total,
            generated_at=_month_start(now),
        )
    )
    if last is None:
        last = PublishedAggregate(cohort=REGISTRATIONS_COHORT, fingerprint=current, published_at=now)
    last.fingerprint, last.published_at = current, now
    uow.session.add(last)
    await uow.commit()
    return True


def _month_start(now: datetime) -> datetime:
    # The network learns the month an aggregate was made in, not the minute (which could date one patient's visit).
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _shown_fingerprint(figures: CohortOutcomesPublished) -> str:
    shown = figures.model_dump_json(exclude={"generated_at"})
    return hashlib.sha256(shown.encode()).hexdigest()


def _key_of(cohort_key: str) -> CohortKey | None:
    """The cohort a published key names (site|indication|route|period|cut|value); None for another kind."""
    parts = cohort_key.split("|")
    if len(parts) != 6:
        return None
    _site, indication, route, period, cut, value = parts
    return CohortKey.model_validate(
        {"indication": indication, "route": route, "period": period, "cut": cut, "cut_value": value}
    )


class CohortRelease(BaseModel):
    """What would be published now: each cohort's figures and the fingerprint of what they show."""

    model_config = ConfigDict(frozen=True)

    figures: tuple[CohortOutcomesPublished, ...]
    fingerprints: tuple[str, ...]


async def published_cohorts(uow: UnitOfWork) -> set[str]:
    return {row.cohort for row in (await uow.session.exec(select(PublishedAggregate))).all()}


async def cohort_release(
    site: str,
    trajectories: Sequence[CourseTrajectory],
    definition: str,
    zone: ZoneInfo,
    published_before: set[str],
    now: datetime,
) -> CohortRelease:
    """Every cohort's figures, and an emptied one for a cohort published before that lost all its courses (a
    course counted in its planning month moves to the month of its first dose), so the network never keeps a
    figure the site no longer has. Pure and CPU-bound for a site's whole history: off the event loop."""

    def figures_now() -> CohortRelease:
        members = [t.cohort_member() for t in trajectories]
        by_key = {f.cohort_key: f for f in cohort_aggregates(site, members, definition, zone, _month_start(now))}
        for cohort in published_before:
            key = _key_of(cohort)
            if key is not None and cohort not in by_key:
                by_key[cohort] = aggregate(site, key, [], definition, _month_start(now))
        ordered = [by_key[k] for k in sorted(by_key)]
        return CohortRelease(figures=tuple(ordered), fingerprints=tuple(_shown_fingerprint(f) for f in ordered))

    return await asyncio.to_thread(figures_now)


async def publish_cohort_outcomes(uow: UnitOfWork, release: CohortRelease, now: datetime) -> int:
    """Publish every cohort whose shown figures changed since it was last published. Returns how many; the
    caller commits."""
    last = {row.cohort: row for row in (await uow.session.exec(select(PublishedAggregate))).all()}
    published = 0
    for figures, shown in zip(release.figures, release.fingerprints, strict=True):
        cohort = figures.cohort_key
        row = last.get(cohort)
        if row is not None and row.fingerprint == shown:
            continue
        await uow.publish(figures)
        if row is None:
            row = PublishedAggregate(cohort=cohort, fingerprint=shown, published_at=now)
        row.fingerprint, row.published_at = shown, now
        uow.session.add(row)
        published += 1
    return published


async def network_aggregates(uow: UnitOfWork) -> list[NetworkAggregate]:
    rows = await uow.session.exec(
        select(NetworkAggregate).order_by(col(NetworkAggregate.site), col(NetworkAggregate.cohort))
    )
    return list(rows.all())
