"""shared/db/bulk.py on both databases: every value of every row arrives as given (types with a bind processor of
their own included), a row already there is skipped or refused as asked, and nothing is half written."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import CompileError, IntegrityError

from shared.db.bulk import InsertSkippingExisting, insert_rows
from shared.db.database import Database
from shared.db.types import UtcDateTime

METADATA = sa.MetaData()
READINGS = sa.Table(
    "bulk_reading",
    METADATA,
    sa.Column("reading_id", sa.Uuid, primary_key=True),
    sa.Column("label", sa.String(20), nullable=False),
    sa.Column("taken_on", sa.Date, nullable=False),
    sa.Column("taken_at", UtcDateTime(), nullable=False),
    sa.Column("dose_mg", sa.Float),
    sa.Column("serious", sa.Boolean, nullable=False),
)


def reading(n: int) -> dict[str, object]:
    return {
        "reading_id": uuid.UUID(int=n + 1),
        "label": f"reading {n}",
        "taken_on": date(2026, 1, 1 + n % 28),
        "taken_at": datetime(2026, 1, 1, 9, n % 60, tzinfo=UTC),
        "dose_mg": None if n % 3 == 0 else n / 4,
        "serious": n % 2 == 0,
    }


async def held(database: Database) -> list[dict[str, object]]:
    async with database.engine.connect() as connection:
        found = await connection.execute(sa.select(READINGS).order_by(READINGS.c.reading_id))
        return [dict(row._mapping) for row in found]


async def test_many_rows_go_in_whole_and_a_clash_is_skipped_or_refused_as_asked(database_url: str) -> None:
    database = Database(database_url)
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(METADATA.create_all)
        rows = [reading(n) for n in range(700)]
        async with database.sessions() as session, session.begin():
            await insert_rows(session, database.dialect, READINGS, rows, skip_existing=True)
        assert await held(database) == rows

        # Written again with one new row: the new one goes in, the rest are left as they were.
        again = [{**row, "label": "changed"} for row in rows[:5]] + [reading(700)]
        async with database.sessions() as session, session.begin():
            await insert_rows(session, database.dialect, READINGS, again, skip_existing=True)
        assert await held(database) == [*rows, reading(700)]

        # Not skipped: the clash raises and the new row of the same statement is not written either.
        with pytest.raises(IntegrityError):
            async with database.sessions() as session, session.begin():
                await insert_rows(session, database.dialect, READINGS, [reading(701), rows[0]], skip_existing=False)
        assert len(await held(database)) == 701
    finally:
        await database.dispose()


async def test_skipping_existing_rows_skips_only_clashing_keys_and_is_compiled_once(database_url: str) -> None:
    # A missing required value is refused even when held keys are skipped (SQLite's INSERT OR IGNORE would drop
    # the row without a word).
    database = Database(database_url)
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(METADATA.create_all)
        with pytest.raises(IntegrityError):
            async with database.sessions() as session, session.begin():
                await insert_rows(
                    session, database.dialect, READINGS, [reading(1), {**reading(2), "label": None}], skip_existing=True
                )
        assert await held(database) == []
    finally:
        await database.dispose()
    # SQLAlchemy caches a statement's compiled form by its cache key; the dialects' on_conflict_do_nothing() has
    # none, so every batch was compiled again.
    assert InsertSkippingExisting(READINGS)._generate_cache_key() is not None
    assert InsertSkippingExisting(READINGS)._generate_cache_key() != sa.insert(READINGS)._generate_cache_key()
    with pytest.raises(CompileError):
        str(InsertSkippingExisting(READINGS).returning(READINGS.c.reading_id))
