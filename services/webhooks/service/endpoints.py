"""What an admin does with endpoints: register, pause, resume, delete, rotate the secret, read the delivery log,
replay what failed. Each loads, calls the aggregate, saves, audits and commits."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel

from services.webhooks.domain.deliveries import WAITING, AttemptResult, Delivery, DeliveryStatus
from services.webhooks.domain.endpoints import Endpoint, EndpointEntry
from services.webhooks.service import store
from shared.audit import record_access
from shared.auth.guard import Actor
from shared.bus.tables import utcnow
from shared.db.unit_of_work import UnitOfWork
from shared.webhooks.signing import WebhookSecret

# A rotated-out secret still signs for a day, so a receiver can switch to the new one without missing a delivery
# (clinic policy; Standard Webhooks lets a delivery carry one signature per active secret).
ROTATION_OVERLAP = timedelta(hours=24)


class RegisteredEndpoint(BaseModel):
    """The endpoint, and its signing secret: shown once, here, and never again."""

    endpoint: Endpoint
    secret: str


class DeliveryRecord(BaseModel):
    """One line of the delivery log with its attempts (never the body: that is the receiver's copy)."""

    delivery: Delivery
    attempts: list[AttemptResult]


def _audit(uow: UnitOfWork, actor: Actor, action: str, endpoint_id: uuid.UUID) -> None:
    record_access(uow, actor, action, None, f"webhooks/endpoints/{endpoint_id}")


async def register(
    uow: UnitOfWork,
    actor: Actor,
    entry: EndpointEntry,
    scope: Literal["site", "network"],
    plain_http_allowed: bool,
) -> RegisteredEndpoint:
    now = utcnow()
    endpoint = Endpoint.register(
        entry,
        registrant_roles=actor.principal.roles,
        scope=scope,
        plain_http_allowed=plain_http_allowed,
        by=actor.sub,
        now=now,
    )
    secret = WebhookSecret.new()
    store.add_endpoint(uow, endpoint)
    store.add_secret(uow, endpoint.id, secret, now)
    _audit(uow, actor, "webhook.register", endpoint.id)
    await uow.commit()
    return RegisteredEndpoint(endpoint=endpoint, secret=str(secret))


async def listed(uow: UnitOfWork) -> list[Endpoint]:
    return await store.endpoints(uow)


async def one(uow: UnitOfWork, endpoint_id: uuid.UUID) -> Endpoint:
    return await store.endpoint_or_404(uow, endpoint_id)


async def pause(uow: UnitOfWork, actor: Actor, endpoint_id: uuid.UUID) -> Endpoint:
    endpoint = (await store.endpoint_or_404(uow, endpoint_id)).pause(utcnow())
    await store.save_endpoint(uow, endpoint)
    _audit(uow, actor, "webhook.pause", endpoint_id)
    await uow.commit()
    return endpoint


async def resume(uow: UnitOfWork, actor: Actor, endpoint_id: uuid.UUID) -> Endpoint:
    endpoint = (await store.endpoint_or_404(uow, endpoint_id)).resume(utcnow())
    await store.save_endpoint(uow, endpoint)
    _audit(uow, actor, "webhook.resume", endpoint_id)
    await uow.commit()
    return endpoint


async def delete(uow: UnitOfWork, actor: Actor, endpoint_id: uuid.UUID) -> None:
    """Nothing more is queued for it; what was still waiting (pending or failed) is cancelled."""
    endpoint = (await store.endpoint_or_404(uow, endpoint_id)).delete(utcnow())
    await store.save_endpoint(uow, endpoint)
    for status in WAITING:
        for delivery in await store.waiting_deliveries(uow, endpoint_id, status):
            await store.save_delivery(uow, delivery.cancel())
    _audit(uow, actor, "webhook.delete", endpoint_id)
    await uow.commit()


async def rotate_secret(uow: UnitOfWork, actor: Actor, endpoint_id: uuid.UUID) -> RegisteredEndpoint:
    endpoint = await store.endpoint_or_404(uow, endpoint_id)
    now = utcnow()
    await store.retire_secrets(uow, endpoint_id, now + ROTATION_OVERLAP)
    secret = WebhookSecret.new()
    store.add_secret(uow, endpoint_id, secret, now)
    _audit(uow, actor, "webhook.rotate_secret", endpoint_id)
    await uow.commit()
    return RegisteredEndpoint(endpoint=endpoint, secret=str(secret))


async def delivery_log(
    uow: UnitOfWork, endpoint_id: uuid.UUID, status: DeliveryStatus | None, after: int, limit: int
) -> list[Delivery]:
    await store.endpoint_or_404(uow, endpoint_id)
    return await store.deliveries_of(uow, endpoint_id, status=status, after=after, limit=limit)


async def delivery_record(uow: UnitOfWork, endpoint_id: uuid.UUID, message_id: str) -> DeliveryRecord:
    await store.endpoint_or_404(uow, endpoint_id)
    delivery = await store.delivery_or_404(uow, endpoint_id, message_id)
    assert delivery.sequence is not None
    return DeliveryRecord(delivery=delivery, attempts=await store.attempts_of(uow, delivery.sequence))


async def replay(uow: UnitOfWork, actor: Actor, endpoint_id: uuid.UUID, message_id: str) -> Delivery:
    await store.endpoint_or_404(uow, endpoint_id)
    delivery = (await store.delivery_or_404(uow, endpoint_id, message_id)).replay(utcnow())
    await store.save_delivery(uow, delivery)
    _audit(uow, actor, "webhook.replay", endpoint_id)
    await uow.commit()
    return delivery


async def replay_failed(uow: UnitOfWork, actor: Actor, endpoint_id: uuid.UUID) -> list[Delivery]:
    """Every failed delivery of the endpoint queued again, in their first order."""
    await store.endpoint_or_404(uow, endpoint_id)
    now = utcnow()
    replayed = [d.replay(now) for d in await store.waiting_deliveries(uow, endpoint_id, DeliveryStatus.failed)]
    for delivery in replayed:
        await store.save_delivery(uow, delivery)
    _audit(uow, actor, "webhook.replay", endpoint_id)
    await uow.commit()
    return replayed
