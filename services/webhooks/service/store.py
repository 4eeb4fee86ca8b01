"""Loading and saving webhooks' aggregates: rows in, domain objects out, and back."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select

from services.webhooks.domain.deliveries import AttemptResult, Delivery, DeliveryStatus
from services.webhooks.domain.endpoints import Endpoint, EndpointStatus
from services.webhooks.models import AttemptRow, DeliveryRow, EndpointRow, SecretRow
from shared.auth.permissions import Role
from shared.db.unit_of_work import UnitOfWork
from shared.errors import RecordNotFound
from shared.webhooks.signing import WebhookSecret


def _endpoint(row: EndpointRow) -> Endpoint:
    return Endpoint(
        id=row.id,
        url=row.url,
        role=Role(row.role),
        event_types=tuple(row.event_types),
        description=row.description,
        status=EndpointStatus(row.status),
        consecutive_failures=row.consecutive_failures,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def add_endpoint(uow: UnitOfWork, endpoint: Endpoint) -> None:
    uow.session.add(
        EndpointRow(
            id=endpoint.id,
            url=endpoint.url,
            role=endpoint.role.value,
            event_types=list(endpoint.event_types),
            description=endpoint.description,
            status=endpoint.status.value,
            consecutive_failures=endpoint.consecutive_failures,
            created_by=endpoint.created_by,
            created_at=endpoint.created_at,
            updated_at=endpoint.updated_at,
        )
    )


async def save_endpoint(uow: UnitOfWork, endpoint: Endpoint) -> None:
    row = await uow.session.get(EndpointRow, endpoint.id)
    if row is None:
        raise RecordNotFound("endpoint")
    row.status = endpoint.status.value
    row.consecutive_failures = endpoint.consecutive_failures
    row.updated_at = endpoint.updated_at
    uow.session.add(row)


async def endpoint_or_404(uow: UnitOfWork, endpoint_id: uuid.UUID) -> Endpoint:
    row = await uow.session.get(EndpointRow, endpoint_id)
    if row is None or row.status == EndpointStatus.deleted.value:
        raise RecordNotFound("endpoint")
    return _endpoint(row)


async def endpoint_if_any(uow: UnitOfWork, endpoint_id: uuid.UUID) -> Endpoint | None:
    row = await uow.session.get(EndpointRow, endpoint_id)
    return None if row is None else _endpoint(row)


async def endpoints(uow: UnitOfWork) -> list[Endpoint]:
    rows = await uow.session.exec(
        select(EndpointRow)
        .where(EndpointRow.status != EndpointStatus.deleted.value)
        .order_by(col(EndpointRow.created_at))
    )
    return [_endpoint(row) for row in rows]


def wanting(active: list[Endpoint], event_type: str) -> list[Endpoint]:
    """Of the active endpoints, every one an event of ``event_type`` is queued for, in a fixed order (few per
    site: filtered here, not in SQL, since the types are a JSON list)."""
    return sorted((e for e in active if e.wants(event_type)), key=lambda e: str(e.id))


def add_secret(uow: UnitOfWork, endpoint_id: uuid.UUID, secret: WebhookSecret, now: datetime) -> None:
    uow.session.add(SecretRow(endpoint_id=endpoint_id, secret=str(secret), created_at=now))


async def retire_secrets(uow: UnitOfWork, endpoint_id: uuid.UUID, expires_at: datetime) -> None:
    """The endpoint's current secrets keep signing until ``expires_at``, beside the new one."""
    rows = await uow.session.exec(
        select(SecretRow).where(SecretRow.endpoint_id == endpoint_id, col(SecretRow.expires_at).is_(None))
    )
    for row in rows:
        row.expires_at = expires_at
        uow.session.add(row)


async def signing_secrets(uow: UnitOfWork, endpoint_id: uuid.UUID, now: datetime) -> list[WebhookSecret]:
    rows = await uow.session.exec(
        select(SecretRow)
        .where(SecretRow.endpoint_id == endpoint_id)
        .where(sa.or_(col(SecretRow.expires_at).is_(None), col(SecretRow.expires_at) > now))
        .order_by(col(SecretRow.id).desc())
    )
    return [WebhookSecret.parse(row.secret) for row in rows]


def _delivery(row: DeliveryRow) -> Delivery:
    return Delivery(
        sequence=row.sequence,
        message_id=row.message_id,
        endpoint_id=row.endpoint_id,
        event_id=row.event_id,
        event_type=row.event_type,
        ordering_key=row.ordering_key,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        first_attempt_at=row.first_attempt_at,
        next_attempt_at=row.next_attempt_at,
        last_attempt_at=row.last_attempt_at,
        last_response_status=row.last_response_status,
        last_error=row.last_error,
        delivered_at=row.delivered_at,
        queued_at=row.queued_at,
    )


def add_delivery(uow: UnitOfWork, delivery: Delivery, body: bytes) -> None:
    uow.session.add(DeliveryRow(**delivery.model_dump(exclude={"sequence"}), body=body))


async def save_delivery(uow: UnitOfWork, delivery: Delivery) -> None:
    row = await uow.session.get(DeliveryRow, delivery.sequence)
    if row is None:
        raise RecordNotFound("delivery")
    for name, value in delivery.model_dump(exclude={"sequence", "message_id", "endpoint_id", "event_id"}).items():
        setattr(row, name, value)
    uow.session.add(row)


def add_attempt(uow: UnitOfWork, sequence: int, result: AttemptResult) -> None:
    uow.session.add(AttemptRow(delivery_sequence=sequence, **result.model_dump()))


async def delivery_or_404(uow: UnitOfWork, endpoint_id: uuid.UUID, message_id: str) -> Delivery:
    row = (
        await uow.session.exec(
            select(DeliveryRow).where(DeliveryRow.endpoint_id == endpoint_id, DeliveryRow.message_id == message_id)
        )
    ).first()
    if row is None:
        raise RecordNotFound("delivery")
    return _delivery(row)


async def delivery_with_body(uow: UnitOfWork, sequence: int) -> tuple[Delivery, bytes] | None:
    row = await uow.session.get(DeliveryRow, sequence)
    return None if row is None else (_delivery(row), row.body)


async def deliveries_of(
    uow: UnitOfWork,
    endpoint_id: uuid.UUID,
    *,
    status: DeliveryStatus | None,
    after: int,
    limit: int,
) -> list[Delivery]:
    query = select(DeliveryRow).where(DeliveryRow.endpoint_id == endpoint_id, col(DeliveryRow.sequence) > after)
    if status is not None:
        query = query.where(DeliveryRow.status == status.value)
    rows = await uow.session.exec(query.order_by(col(DeliveryRow.sequence)).limit(limit))
    return [_delivery(row) for row in rows]


async def waiting_deliveries(uow: UnitOfWork, endpoint_id: uuid.UUID, status: DeliveryStatus) -> list[Delivery]:
    rows = await uow.session.exec(
        select(DeliveryRow)
        .where(DeliveryRow.endpoint_id == endpoint_id, DeliveryRow.status == status.value)
        .order_by(col(DeliveryRow.sequence))
    )
    return [_delivery(row) for row in rows]


async def attempts_of(uow: UnitOfWork, sequence: int) -> list[AttemptResult]:
    rows = await uow.session.exec(
        select(AttemptRow).where(AttemptRow.delivery_sequence == sequence).order_by(col(AttemptRow.id))
    )
    return [
        AttemptResult(
            attempted_at=row.attempted_at,
            response_status=row.response_status,
            error=row.error,
            duration_ms=row.duration_ms,
        )
        for row in rows
    ]


async def due_deliveries(
    uow: UnitOfWork, now: datetime, *, limit: int, per_endpoint: int, in_flight: Mapping[int, uuid.UUID]
) -> list[Delivery]:
    """Pending deliveries whose time has come, to active endpoints, each the first still pending of its endpoint
    and key: a patient's later events wait behind an earlier one that is being retried (order per patient).
    Those due longest come first, and no endpoint gets more than ``per_endpoint`` at once counting those
    ``in_flight`` (sequence -> endpoint): the cap is applied here, before the limit, so that one endpoint's
    backlog cannot fill every row returned while the others' deliveries wait behind it."""
    # While a receiver is down its deliveries wait out their retries, and most polls find nothing due: one probe of
    # the due index says so, instead of the pass over every pending delivery below (bench/webhook_queue.py).
    soonest = await uow.session.scalar(
        sa.select(col(DeliveryRow.next_attempt_at))
        .where(col(DeliveryRow.status) == DeliveryStatus.pending.value)
        .order_by(col(DeliveryRow.next_attempt_at))
        .limit(1)
    )
    if soonest is None or soonest > now:
        return []
    busy = Counter(in_flight.values())
    full = [endpoint for endpoint, n in busy.items() if n >= per_endpoint]
    # Each pending delivery's place in its endpoint and key's line, in queue order: only the first (1) may go,
    # every other waits behind it. One pass over the pending rows, with no join between derived tables: a plan
    # that joined the line's heads back to the rows took 20 s for 10,000 on PostgreSQL before its statistics
    # caught up with a backlog that had just grown (bench/webhook_queue.py).
    pending = (
        sa.select(
            col(DeliveryRow.sequence),
            col(DeliveryRow.endpoint_id),
            col(DeliveryRow.next_attempt_at),
            sa.func.row_number()
            .over(
                partition_by=(col(DeliveryRow.endpoint_id), col(DeliveryRow.ordering_key)),
                order_by=col(DeliveryRow.sequence),
            )
            .label("in_line"),
        )
        .where(col(DeliveryRow.status) == DeliveryStatus.pending.value)
        .subquery()
    )
    # Longest due first, not queue order: while a receiver is down the first keys' retries fall due again and
    # again, and in queue order they would take every slot from the keys behind them.
    ranked = (
        sa.select(
            pending.c.sequence,
            sa.func.row_number()
            .over(partition_by=pending.c.endpoint_id, order_by=(pending.c.next_attempt_at, pending.c.sequence))
            .label("place"),
        )
        .join(EndpointRow, col(EndpointRow.id) == pending.c.endpoint_id)
        .where(
            pending.c.in_line == 1,
            pending.c.next_attempt_at <= now,
            col(EndpointRow.status) == EndpointStatus.active.value,
            pending.c.sequence.not_in(list(in_flight)),  # in flight, it still holds its line (in_line above)
            pending.c.endpoint_id.not_in(full),
        )
        .subquery()
    )
    # What each endpoint may still take: its cap less what it has in flight.
    room = per_endpoint - sa.case(busy, value=col(DeliveryRow.endpoint_id), else_=0) if busy else per_endpoint
    query = (
        select(DeliveryRow)
        .join(ranked, ranked.c.sequence == DeliveryRow.sequence)
        .where(ranked.c.place <= room)
        .order_by(col(DeliveryRow.next_attempt_at), col(DeliveryRow.sequence))
        .limit(limit)
    )
    return [_delivery(row) for row in await uow.session.exec(query)]
