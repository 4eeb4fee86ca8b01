"""The webhooks dispatcher's poll of its queue (``store.due_deliveries``) while a receiver is down, against a
plain read of the same queue in the same run.

    python -m bench.webhook_queue [--database sqlite|postgresql|both] [--json PATH]

Each case is a fresh webhooks database (migrated as the service migrates it) with one receiver that is down and
one that is up: ``pending`` deliveries all due for the receiver that is down, over ``keys`` patients, and
``delivered`` old deliveries to the other; in the last case each pending delivery was tried and waits out its
retry, so none is due. Then, 5 times each, medians:

- Baseline: the 16 deliveries due longest, by the queue's due index alone (no order per patient, no cap per
  endpoint): the least any poll must read.
- Poll: ``due_deliveries(limit=16, per_endpoint=4)``, as the dispatcher calls it: only each patient's first
  pending delivery, at most 4 per endpoint.

Printed: both in milliseconds and the ratio poll/baseline. Figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from bench.report import print_figures
from deploy.postgres.launcher import PostgresServer
from services.webhooks.domain.deliveries import Delivery, DeliveryStatus
from services.webhooks.domain.endpoints import Endpoint, EndpointEntry
from services.webhooks.models import DeliveryRow
from services.webhooks.service import store
from shared.auth.permissions import Role
from shared.db.database import Database
from shared.db.migrate import upgrade_to_head
from shared.db.unit_of_work import UnitOfWork

MIGRATIONS = Path(__file__).parent.parent / "services" / "webhooks" / "migrations" / "versions"
REGISTERED = "org.kapnet.intake.patient.registered.v1"
T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
# (pending for the receiver that is down, patients they are over, delivered to the other receiver, whether each
# pending delivery was tried and waits out its retry: none due, as through most of an outage)
CASES = [
    (10_000, 10_000, 0, False),
    (100_000, 100_000, 0, False),
    (100_000, 1_000, 0, False),
    (1_000, 100, 200_000, False),
    (100_000, 100_000, 0, True),
]
REPEATS = 5


def receiver(url: str) -> Endpoint:
    return Endpoint.register(
        EndpointEntry(url=url, role=Role.front_desk, event_types=[REGISTERED]),
        registrant_roles=frozenset({Role.front_desk}),
        scope="site",
        plain_http_allowed=True,
        by="admin",
        now=T0,
    )


async def median_ms(read: Callable[[], Awaitable[object]]) -> float:
    times = []
    for _ in range(REPEATS):
        began = time.perf_counter()
        await read()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


async def measure(url: str, pending: int, keys: int, delivered: int, retrying: bool) -> dict[str, Any]:
    await asyncio.to_thread(upgrade_to_head, url, MIGRATIONS)
    database = Database(url)
    try:

        def unit_of_work() -> UnitOfWork:
            return UnitOfWork(database, source="/kapnet/bench/webhooks", site="bench")

        down, up = receiver("http://127.0.0.1:9/down"), receiver("http://127.0.0.1:9/up")
        async with unit_of_work() as uow:
            store.add_endpoint(uow, down)
            store.add_endpoint(uow, up)
            await uow.commit()
        total = delivered + pending
        now = T0 + timedelta(days=1)
        for start in range(0, total, 5_000):
            async with unit_of_work() as uow:
                for n in range(start, min(total, start + 5_000)):
                    old = n < delivered
                    queued_at = T0 + timedelta(milliseconds=n)
                    delivery = Delivery.queue(
                        up.id if old else down.id, f"e-{n}", REGISTERED, f"p{n % keys}", queued_at
                    )
                    if old:
                        delivery = delivery.model_copy(update={"status": DeliveryStatus.delivered})
                    elif retrying:
                        delivery = delivery.model_copy(
                            update={"attempts": 1, "next_attempt_at": now + timedelta(hours=1)}
                        )
                    store.add_delivery(uow, delivery, b"{}")
                await uow.commit()

        async def baseline() -> object:
            async with unit_of_work() as uow:
                query = (
                    sa.select(DeliveryRow)
                    .where(
                        col(DeliveryRow.status) == DeliveryStatus.pending.value, col(DeliveryRow.next_attempt_at) <= now
                    )
                    .order_by(col(DeliveryRow.next_attempt_at), col(DeliveryRow.sequence))
                    .limit(16)
                )
                return (await uow.session.execute(query)).all()

        async def poll() -> object:
            async with unit_of_work() as uow:
                return await store.due_deliveries(uow, now, limit=16, per_endpoint=4, in_flight={})

        plain, polled = await median_ms(baseline), await median_ms(poll)
        return {
            "database": database.dialect,
            "pending": pending,
            "patients": keys,
            "delivered": delivered,
            "retrying": retrying,
            "baseline_ms": round(plain, 1),
            "poll_ms": round(polled, 1),
            "ratio": round(polled / plain, 1),
        }
    finally:
        await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.webhook_queue", description=__doc__)
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        server = None
        if args.database != "sqlite":
            server = PostgresServer(Path(tmp) / "postgres")
            server.start()
        try:
            for n, (pending, keys, delivered, retrying) in enumerate(CASES):
                urls = []
                if args.database != "postgresql":
                    urls.append(f"sqlite+aiosqlite:///{Path(tmp) / f'webhooks-{n}.db'}")
                if server is not None:
                    urls.append(server.create_database(f"webhooks_{n}"))
                for url in urls:
                    rows.append(asyncio.run(measure(url, pending, keys, delivered, retrying)))
                    print(rows[-1], flush=True)
        finally:
            if server is not None:
                server.destroy()
    print_figures({"limit": 16, "per_endpoint": 4, "repeats": REPEATS, "cases": rows}, args.json)


if __name__ == "__main__":
    main()
