"""A transaction's events on PostgreSQL: same-key writers number their outbox rows in commit order, and the
outbox's locks never make a deadlock with the rows a transaction changes."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlmodel import col, select

from services.outcomes.models import Registration
from shared.bus.tables import OutboxMessage
from shared.db.database import Database
from shared.db.migrate import upgrade_to_head
from shared.db.unit_of_work import UnitOfWork
from tests.conftest import OUTCOMES_SITE_MIGRATIONS
from tests.harness import PostgresDatabases
from tests.shared.events_for_tests import registration

pytestmark = pytest.mark.postgres


async def test_a_writer_holding_a_row_and_one_holding_the_same_key_both_commit(postgres: PostgresDatabases) -> None:
    """T1 changes a row (flushed: it holds the row's lock) and publishes for patient P; T2 changes the same row
    without a query and publishes for P, and commits first; then T1 commits. Had T2 taken the outbox lock for P
    before flushing its change, each would wait for the other (PostgreSQL's deadlock detector kills one)."""
    url = postgres.fresh()
    await asyncio.to_thread(upgrade_to_head, url, OUTCOMES_SITE_MIGRATIONS)
    database = Database(url)
    patient = uuid.uuid4()
    try:
        async with UnitOfWork(database, source="/test", site="north") as uow:
            uow.session.add(Registration(patient_id=patient, registered_month="2026-01"))
            await uow.commit()
        event = registration("north", patient_id=patient)
        first, second = (
            UnitOfWork(database, source="/test", site="north"),
            UnitOfWork(database, source="/test", site="north"),
        )
        async with first, second:
            row = await first.session.get(Registration, patient)
            assert row is not None
            row.registered_month = "2026-02"
            first.session.add(row)
            await first.session.flush()  # first holds the row's lock now
            await first.publish(event)
            other = await second.session.get(Registration, patient)
            assert other is not None
            other.registered_month = "2026-03"
            second.session.add(other)  # not flushed: its UPDATE waits for commit()
            await second.publish(event)
            committing = asyncio.create_task(second.commit())
            await asyncio.sleep(0.5)  # second is blocked on the row, holding no outbox lock
            assert not committing.done()
            await asyncio.wait_for(first.commit(), 10)
            await asyncio.wait_for(committing, 10)
        async with database.sessions() as session:
            ids = (await session.exec(select(OutboxMessage.event_id).order_by(col(OutboxMessage.id)))).all()
            month = await session.get(Registration, patient)
        assert len(ids) == 2
        assert month is not None and month.registered_month == "2026-03"  # second committed last
    finally:
        await database.dispose()


async def test_the_locks_that_are_free_are_taken_and_a_held_one_is_left_without_waiting(
    postgres: PostgresDatabases,
) -> None:
    database = Database(postgres.fresh())
    try:
        async with UnitOfWork(database, source="/test", site="north") as holder:
            await holder.lock("cohort a")
            async with UnitOfWork(database, source="/test", site="north") as other:
                taken = await asyncio.wait_for(other.lock_those_free("cohort a", "cohort b"), 5)
                assert taken == {"cohort b"}, "the held one is left, and nothing waits for it"
                assert await other.lock_those_free("cohort b") == {"cohort b"}, "held to its transaction's end"
        async with UnitOfWork(database, source="/test", site="north") as later:
            assert await later.lock_those_free("cohort a", "cohort b") == {"cohort a", "cohort b"}
    finally:
        await database.dispose()
