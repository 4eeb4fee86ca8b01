"""Outcomes' event handlers. Each runs inside the consumer's transaction, with the inbox entry."""

from __future__ import annotations

from services.outcomes.domain.registrations import month_of
from services.outcomes.models import NetworkAggregate, Registration
from shared.bus.tables import utcnow
from shared.db.unit_of_work import UnitOfWork
from shared.events.envelope import CloudEvent
from shared.events.intake import PatientRegistered
from shared.events.outcomes import CohortAggregatePublished
from shared.events.registry import DomainEvent


async def on_patient_registered(uow: UnitOfWork, event: DomainEvent, _envelope: CloudEvent) -> None:
    assert isinstance(event, PatientRegistered)
    if await uow.session.get(Registration, event.patient_id) is None:
        uow.session.add(Registration(patient_id=event.patient_id, registered_month=month_of(event.registered_at)))


async def on_cohort_aggregate(uow: UnitOfWork, event: DomainEvent, _envelope: CloudEvent) -> None:
    assert isinstance(event, CohortAggregatePublished)
    row = await uow.session.get(NetworkAggregate, (event.site, event.cohort))
    if row is None:
        row = NetworkAggregate(site=event.site, cohort=event.cohort, aggregate={}, received_at=utcnow())
    row.aggregate = event.model_dump(mode="json")
    row.received_at = utcnow()
    uow.session.add(row)
