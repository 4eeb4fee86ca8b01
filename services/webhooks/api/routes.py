"""Webhooks' HTTP routes: thin; they validate, call the use cases, and shape the reply. The same routes serve a
site (its admin, its events) and the network (the network admin, the aggregates)."""

# No ``from __future__ import annotations``: each route's parameter types are built in the factory below, and FastAPI
# must see them as objects (the guard is the factory's own), not as names to look up in this module.

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status

from services.webhooks.api.deps import PlacementDep
from services.webhooks.domain.deliveries import Delivery, DeliveryStatus
from services.webhooks.domain.endpoints import Endpoint, EndpointEntry
from services.webhooks.service import endpoints
from services.webhooks.service.endpoints import DeliveryRecord, RegisteredEndpoint
from shared.app import UnitOfWorkDep
from shared.auth.guard import Actor, require
from shared.auth.permissions import Permission, Role
from shared.events.audience import receivable_types


def webhook_router(permission: Permission) -> APIRouter:
    guard = require(permission)
    router = APIRouter(prefix="/webhooks", tags=["webhooks"])

    @router.get("/event-types", summary="The event types an endpoint registered for this role may receive here")
    async def event_types(role: Role, actor: Annotated[Actor, Depends(guard)], placement: PlacementDep) -> list[str]:
        return receivable_types(role, placement.scope)

    @router.post(
        "/endpoints",
        status_code=status.HTTP_201_CREATED,
        response_model=RegisteredEndpoint,
        summary="Register an endpoint; the reply holds its signing secret, shown this once",
    )
    async def register(
        body: EndpointEntry,
        actor: Annotated[Actor, Depends(guard)],
        uow: UnitOfWorkDep,
        placement: PlacementDep,
    ) -> RegisteredEndpoint:
        return await endpoints.register(uow, actor, body, placement.scope, placement.plain_http_allowed)

    @router.get("/endpoints", response_model=list[Endpoint], summary="Every endpoint not deleted")
    async def listed(actor: Annotated[Actor, Depends(guard)], uow: UnitOfWorkDep) -> list[Endpoint]:
        return await endpoints.listed(uow)

    @router.get("/endpoints/{endpoint_id}", response_model=Endpoint, summary="One endpoint")
    async def one(endpoint_id: uuid.UUID, actor: Annotated[Actor, Depends(guard)], uow: UnitOfWorkDep) -> Endpoint:
        return await endpoints.one(uow, endpoint_id)

    @router.post(
        "/endpoints/{endpoint_id}/pause",
        response_model=Endpoint,
        summary="Hold its deliveries: they wait, in order, until it is resumed",
    )
    async def pause(endpoint_id: uuid.UUID, actor: Annotated[Actor, Depends(guard)], uow: UnitOfWorkDep) -> Endpoint:
        return await endpoints.pause(uow, actor, endpoint_id)

    @router.post(
        "/endpoints/{endpoint_id}/resume",
        response_model=Endpoint,
        summary="Send again, after a pause or after it was disabled for repeated failures",
    )
    async def resume(endpoint_id: uuid.UUID, actor: Annotated[Actor, Depends(guard)], uow: UnitOfWorkDep) -> Endpoint:
        return await endpoints.resume(uow, actor, endpoint_id)

    @router.delete(
        "/endpoints/{endpoint_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        response_class=Response,
        summary="Delete it: nothing more is queued, and what waited is cancelled",
    )
    async def delete(endpoint_id: uuid.UUID, actor: Annotated[Actor, Depends(guard)], uow: UnitOfWorkDep) -> Response:
        await endpoints.delete(uow, actor, endpoint_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.post(
        "/endpoints/{endpoint_id}/secret/rotate",
        response_model=RegisteredEndpoint,
        summary="A new signing secret (shown this once); the old one still signs for 24 hours",
    )
    async def rotate(
        endpoint_id: uuid.UUID,
        actor: Annotated[Actor, Depends(guard)],
        uow: UnitOfWorkDep,
    ) -> RegisteredEndpoint:
        return await endpoints.rotate_secret(uow, actor, endpoint_id)

    @router.get(
        "/endpoints/{endpoint_id}/deliveries",
        response_model=list[Delivery],
        summary="The delivery log, in queue order: status, attempts, last answer (never the body)",
    )
    async def deliveries(
        endpoint_id: uuid.UUID,
        actor: Annotated[Actor, Depends(guard)],
        uow: UnitOfWorkDep,
        delivery_status: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
        after: Annotated[int, Query(ge=0, description="the last sequence already read")] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[Delivery]:
        return await endpoints.delivery_log(uow, endpoint_id, delivery_status, after, limit)

    @router.get(
        "/endpoints/{endpoint_id}/deliveries/{message_id}",
        response_model=DeliveryRecord,
        summary="One delivery and each of its attempts",
    )
    async def delivery(
        endpoint_id: uuid.UUID,
        message_id: Annotated[str, Path(max_length=40)],
        actor: Annotated[Actor, Depends(guard)],
        uow: UnitOfWorkDep,
    ) -> DeliveryRecord:
        return await endpoints.delivery_record(uow, endpoint_id, message_id)

    @router.post(
        "/endpoints/{endpoint_id}/deliveries/{message_id}/replay",
        response_model=Delivery,
        summary="Queue a failed delivery again, with the same webhook-id",
    )
    async def replay(
        endpoint_id: uuid.UUID,
        message_id: str,
        actor: Annotated[Actor, Depends(guard)],
        uow: UnitOfWorkDep,
    ) -> Delivery:
        return await endpoints.replay(uow, actor, endpoint_id, message_id)

    @router.post(
        "/endpoints/{endpoint_id}/replay-failed",
        response_model=list[Delivery],
        summary="Queue every failed delivery of the endpoint again, in their order",
    )
    async def replay_failed(
        endpoint_id: uuid.UUID,
        actor: Annotated[Actor, Depends(guard)],
        uow: UnitOfWorkDep,
    ) -> list[Delivery]:
        return await endpoints.replay_failed(uow, actor, endpoint_id)

    return router


SITE_ROUTERS = [webhook_router(Permission.webhook_manage)]
NETWORK_ROUTERS = [webhook_router(Permission.network_webhook_manage)]
