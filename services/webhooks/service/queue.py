"""The consumer's side: every event read from the site's topics (or the network's) is queued, in the consumer's
transaction, for each endpoint that wants it, as that endpoint's role may see it. The inbox makes this happen once
per event, so a record read twice never becomes two deliveries."""

from __future__ import annotations

from collections.abc import Sequence

from services.webhooks.domain.deliveries import Delivery, message_body
from services.webhooks.service import store
from shared.bus.consumer import Batched, Delivered, Handler
from shared.bus.tables import utcnow
from shared.db.unit_of_work import UnitOfWork
from shared.events.audience import may_receive, view_for
from shared.events.registry import DomainEvent, event_types


async def _queue_deliveries(uow: UnitOfWork, delivered: Sequence[Delivered]) -> None:
    now = utcnow()
    # The endpoints once for the run, not once per event: make run's synthetic history is 14,000 events a site,
    # and the per-event query was half the consumer's time.
    active = await store.endpoints(uow)
    for event, envelope in delivered:
        for endpoint in store.wanting(active, envelope.type):
            # Checked again here, not only at registration: the permission table may have narrowed since.
            if not may_receive(type(event), endpoint.role):
                continue
            body = message_body(envelope.type, envelope.time, view_for(event, endpoint.role))
            delivery = Delivery.queue(endpoint.id, envelope.id, envelope.type, event.partition_key(), now)
            store.add_delivery(uow, delivery, body)


# Every event of a scope goes to this one handler, so a batch is one run in record order.
queue_deliveries = Batched(_queue_deliveries)


def handlers_for(scope: str) -> dict[type[DomainEvent], Handler]:
    """One handler for every event type of the scope: which are wanted is the endpoints' choice, read per run."""
    return {model: queue_deliveries for model in event_types().values() if model.scope == scope}
