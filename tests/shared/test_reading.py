"""Reads that record nothing (ServiceRuntime.reading): they never queue behind a write in progress, they see only
what was committed, and they cannot write."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from services.outcomes.models import Registration
from shared.db.database import Database
from shared.db.migrate import upgrade_to_head
from shared.db.unit_of_work import UnitOfWork
from tests.conftest import OUTCOMES_SITE_MIGRATIONS

# A guard against a hang, not a measure of speed: on the writer's own connection the read would wait forever.
NEVER = 30


async def _register(database: Database, patient: uuid.UUID, month: str) -> None:
    async with UnitOfWork(database, source="/test", site="north") as uow:
        uow.session.add(Registration(patient_id=patient, registered_month=month))
        await uow.commit()


async def test_a_read_goes_on_while_a_write_is_open_and_sees_only_what_was_committed(outcomes_db: Database) -> None:
    committed, pending = uuid.uuid4(), uuid.uuid4()
    await _register(outcomes_db, committed, "2026-01")
    async with UnitOfWork(outcomes_db, source="/test", site="north") as writer:
        writer.session.add(Registration(patient_id=pending, registered_month="2026-02"))
        await writer.session.flush()  # the writer holds its transaction (on SQLite, the one writing connection)

        async def read() -> tuple[Registration | None, Registration | None]:
            async with UnitOfWork(outcomes_db, source="/test", site="north", read_only=True) as reader:
                return (
                    await reader.session.get(Registration, committed),
                    await reader.session.get(Registration, pending),
                )

        seen, unseen = await asyncio.wait_for(read(), NEVER)
        assert seen is not None and seen.registered_month == "2026-01"
        assert unseen is None
        await writer.commit()
    async with UnitOfWork(outcomes_db, source="/test", site="north", read_only=True) as reader:
        after = await reader.session.get(Registration, pending)
    assert after is not None and after.registered_month == "2026-02"


async def test_a_reading_unit_of_work_refuses_to_commit_and_leaves_nothing(outcomes_db: Database) -> None:
    patient = uuid.uuid4()
    async with UnitOfWork(outcomes_db, source="/test", site="north", read_only=True) as reader:
        reader.session.add(Registration(patient_id=patient, registered_month="2026-03"))
        with pytest.raises(RuntimeError, match="read-only unit of work cannot commit"):
            await reader.commit()
    async with UnitOfWork(outcomes_db, source="/test", site="north") as uow:
        assert await uow.session.get(Registration, patient) is None


async def test_a_sqlite_reading_connection_cannot_write_even_when_asked_directly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'outcomes.db'}"
    await asyncio.to_thread(upgrade_to_head, url, OUTCOMES_SITE_MIGRATIONS)
    database = Database(url)
    try:
        assert database.reading_sessions is not database.sessions
        async with database.reading_sessions() as session:
            session.add(Registration(patient_id=uuid.uuid4(), registered_month="2026-04"))
            with pytest.raises(OperationalError, match="readonly"):
                await session.flush()
    finally:
        await database.dispose()
