"""Which deliveries the dispatcher takes next (store.due_deliveries), on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest

from services.webhooks.domain.deliveries import AttemptResult, Delivery, RetrySchedule
from services.webhooks.domain.endpoints import Endpoint, EndpointEntry
from services.webhooks.service import store
from shared.auth.permissions import Role
from shared.db.database import Database
from shared.db.unit_of_work import UnitOfWork
from tests.conftest import ROOT, migrated_database

MIGRATIONS = ROOT / "services" / "webhooks" / "migrations" / "versions"
REGISTERED = "org.kapnet.intake.patient.registered.v1"
T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
async def webhooks_db(new_database_url: Callable[[], str]) -> AsyncIterator[Database]:
    async with migrated_database(new_database_url(), MIGRATIONS) as database:
        yield database


def unit_of_work(database: Database) -> UnitOfWork:
    return UnitOfWork(database, source="/kapnet/north/webhooks", site="north")


def endpoint(url: str) -> Endpoint:
    return Endpoint.register(
        EndpointEntry(url=url, role=Role.front_desk, event_types=[REGISTERED]),
        registrant_roles=frozenset({Role.front_desk}),
        scope="site",
        plain_http_allowed=True,
        by="admin",
        now=T0,
    )


async def test_each_endpoint_is_capped_before_the_limit_so_a_backlog_cannot_fill_it(webhooks_db: Database) -> None:
    backlogged, other = endpoint("http://127.0.0.1:9/backlog"), endpoint("http://127.0.0.1:9/other")
    async with unit_of_work(webhooks_db) as uow:
        store.add_endpoint(uow, backlogged)
        store.add_endpoint(uow, other)
        # Ten patients queued for the backlogged endpoint before the other endpoint's two: all due.
        for n in range(10):
            queued = Delivery.queue(backlogged.id, f"b-{n}", REGISTERED, f"patient-b{n}", T0 + timedelta(seconds=n))
            store.add_delivery(uow, queued, b"{}")
        for n in range(2):
            queued = Delivery.queue(other.id, f"o-{n}", REGISTERED, f"patient-o{n}", T0 + timedelta(seconds=20 + n))
            store.add_delivery(uow, queued, b"{}")
        await uow.commit()

    now = T0 + timedelta(minutes=1)

    async def due(limit: int, in_flight: dict[int, uuid.UUID]) -> list[Delivery]:
        async with unit_of_work(webhooks_db) as uow:
            return await store.due_deliveries(uow, now, limit=limit, per_endpoint=2, in_flight=in_flight)

    first = await due(3, {})
    assert [d.event_id for d in first] == ["b-0", "b-1", "o-0"]  # longest due first, two at most per endpoint
    sequence = {d.event_id: d.sequence for d in first}
    b0, b1 = sequence["b-0"], sequence["b-1"]
    assert b0 is not None and b1 is not None

    # One of the backlog in flight: room for one more of it, and for two of the other's.
    assert [d.event_id for d in await due(5, {b0: backlogged.id})] == ["b-1", "o-0", "o-1"]
    # The backlogged endpoint is at its cap: however long its backlog, the other's come first.
    assert [d.event_id for d in await due(2, {b0: backlogged.id, b1: backlogged.id})] == ["o-0", "o-1"]


async def test_a_patients_later_event_waits_behind_the_earlier_one_until_it_leaves_the_queue(
    webhooks_db: Database,
) -> None:
    receiver = endpoint("http://127.0.0.1:9/receiver")
    schedule = RetrySchedule(base_seconds=60, cap_seconds=600, window_seconds=86_400)
    async with unit_of_work(webhooks_db) as uow:
        store.add_endpoint(uow, receiver)
        for event_id, patient, second in (("a-1", "a", 0), ("a-2", "a", 1), ("a-3", "a", 2), ("b-1", "b", 3)):
            store.add_delivery(
                uow, Delivery.queue(receiver.id, event_id, REGISTERED, patient, T0.replace(second=second)), b"{}"
            )
        await uow.commit()
    now = T0 + timedelta(minutes=1)

    async def due(in_flight: dict[int, uuid.UUID] | None = None) -> list[str]:
        async with unit_of_work(webhooks_db) as uow:
            found = await store.due_deliveries(uow, now, limit=10, per_endpoint=10, in_flight=in_flight or {})
        return [d.event_id for d in found]

    async def attempt(event_id: str, status: int) -> None:
        async with unit_of_work(webhooks_db) as uow:
            [delivery] = [
                d
                for d in await store.due_deliveries(uow, now, limit=10, per_endpoint=10, in_flight={})
                if d.event_id == event_id
            ]
            result = AttemptResult(attempted_at=now, response_status=status, duration_ms=5)
            await store.save_delivery(uow, delivery.attempted(result, schedule))
            await uow.commit()

    assert await due() == ["a-1", "b-1"], "each patient's first event only"
    async with unit_of_work(webhooks_db) as uow:
        a1 = (await store.due_deliveries(uow, now, limit=1, per_endpoint=10, in_flight={}))[0]
    assert a1.sequence is not None
    assert await due({a1.sequence: receiver.id}) == ["b-1"], "a-1 in flight still holds a-2 back"
    await attempt("a-1", 503)  # retried in a minute: not due now, and a-2 still waits behind it
    assert await due() == ["b-1"]
    now += timedelta(minutes=2)
    await attempt("a-1", 204)  # delivered: the next of patient a comes up, and only that one
    assert await due() == ["a-2", "b-1"]


async def test_a_queue_waiting_out_its_retries_gives_nothing_until_the_first_falls_due(webhooks_db: Database) -> None:
    receiver = endpoint("http://127.0.0.1:9/down")
    schedule = RetrySchedule(base_seconds=60, cap_seconds=600, window_seconds=86_400)
    async with unit_of_work(webhooks_db) as uow:
        store.add_endpoint(uow, receiver)
        for n in range(3):
            queued = Delivery.queue(receiver.id, f"e-{n}", REGISTERED, f"patient-{n}", T0)
            # Each tried once, the receiver down: retried 60 s after its try, the tries a second apart.
            tried = AttemptResult(attempted_at=T0 + timedelta(seconds=n), response_status=503, duration_ms=5)
            store.add_delivery(uow, queued.attempted(tried, schedule), b"{}")
        await uow.commit()

    async def due(now: datetime) -> list[str]:
        async with unit_of_work(webhooks_db) as uow:
            found = await store.due_deliveries(uow, now, limit=10, per_endpoint=10, in_flight={})
        return [d.event_id for d in found]

    assert await due(T0 + timedelta(seconds=59)) == []
    assert await due(T0 + timedelta(seconds=60)) == ["e-0"], "due at its retry time to the microsecond"
    assert await due(T0 + timedelta(minutes=5)) == ["e-0", "e-1", "e-2"]
