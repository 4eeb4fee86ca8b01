"""Outcomes' use cases."""

from __future__ import annotations

from sqlmodel import col, select

from services.outcomes.domain.registrations import REGISTRATIONS_COHORT, fingerprint, registrations_by_month
from services.outcomes.models import NetworkAggregate, PublishedAggregate, Registration
from shared.bus.tables import utcnow
from shared.db.unit_of_work import UnitOfWork
from shared.events.outcomes import CohortAggregatePublished


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
            generated_at=now.replace(day=1, hour=0, minute=0, second=0, microsecond=0),
        )
    )
    if last is None:
        last = PublishedAggregate(cohort=REGISTRATIONS_COHORT, fingerprint=current, published_at=now)
    last.fingerprint, last.published_at = current, now
    uow.session.add(last)
    await uow.commit()
    return True


async def network_aggregates(uow: UnitOfWork) -> list[NetworkAggregate]:
    rows = await uow.session.exec(
        select(NetworkAggregate).order_by(col(NetworkAggregate.site), col(NetworkAggregate.cohort))
    )
    return list(rows.all())
