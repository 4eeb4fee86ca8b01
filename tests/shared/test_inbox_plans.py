"""PostgreSQL may keep one generic plan for a statement psycopg has prepared. Chosen while the inbox is
nearly empty, that plan reads every entry of the consumer for each batch; the consumer plans its batches for the
inbox as it is. pg_prepared_statements counts, per prepared statement, the generic and the custom plans used."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from shared.bus.consumer import ConsumerConfig, EventConsumer, inbox_lookup
from shared.bus.tables import InboxEntry
from shared.db.database import Database
from shared.db.migrate import upgrade_to_head
from shared.db.unit_of_work import UnitOfWork
from tests.conftest import OUTCOMES_SITE_MIGRATIONS
from tests.harness import PostgresDatabases

ENTRIES = 3
# psycopg prepares a statement once it has run 5 times; PostgreSQL plans a prepared statement's first 5 runs for their
# parameters and from the 6th may keep a generic plan.
BATCHES = 12
PLANS = sa.text(
    "SELECT coalesce(sum(generic_plans), 0)::int, coalesce(sum(custom_plans), 0)::int FROM pg_prepared_statements"
    " WHERE statement LIKE '%FROM inbox_entry%'"
)


@pytest.mark.postgres
async def test_every_inbox_lookup_is_planned_for_the_inbox_as_it_is(postgres: PostgresDatabases) -> None:
    url = postgres.fresh()
    await asyncio.to_thread(upgrade_to_head, url, OUTCOMES_SITE_MIGRATIONS)
    database = Database(url)
    consumer = EventConsumer(
        database,
        ConsumerConfig(
            "outcomes@north", [], "kapnet.north.outcomes.deadletter.v1", "/kapnet/north/outcomes", "north", ""
        ),
        {},
    )
    ids = [str(uuid.uuid4()) for _ in range(500)]
    try:
        # A new inbox: a first batch taken in.
        async with database.sessions() as session:
            now = datetime.now(UTC)
            session.add_all(
                InboxEntry(
                    consumer="outcomes@north",
                    event_id=str(uuid.uuid4()),
                    ce_type="kapnet.test",
                    topic="t",
                    partition=0,
                    offset=n,
                    outcome="processed",
                    received_at=now,
                )
                for n in range(ENTRIES)
            )
            await session.commit()
        # The same lookup in a plain transaction, on the same new inbox: prepared, then its generic plan taken.
        async with database.sessions() as session:
            for _ in range(BATCHES):
                await session.exec(inbox_lookup("outcomes@north"), params={"ids": ids})
            generic, _custom = (await (await session.connection()).execute(PLANS)).one()
            assert generic > 0
        async with UnitOfWork(database, source="/kapnet/north/outcomes", site="north") as uow:
            for _ in range(BATCHES):
                assert await consumer._seen_among(uow, ids) == set()
            generic, custom = (await (await uow.session.connection()).execute(PLANS)).one()
        assert generic == 0
        assert custom == BATCHES - 5  # prepared from its 6th run on, and planned for every run
    finally:
        await database.dispose()
