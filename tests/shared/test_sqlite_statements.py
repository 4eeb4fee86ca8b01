"""SQLite statements with fewer hand-offs (shared/db/sqlite_statements.py), on real SQLite files: what SQLAlchemy
reads back is what aiosqlite gave, a statement inside a writing transaction makes no hand-off, and what can wait
for another process (BEGIN IMMEDIATE) still waits on the connection's thread, with the event loop free."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite.core
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from shared.db.database import Database
from shared.db.sqlite_statements import OneTripConnection

METADATA = sa.MetaData()
VISITS = sa.Table(
    "visit",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("code", sa.String(10), nullable=False, unique=True),
    sa.Column("minutes", sa.Integer, nullable=False),
)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'visits.db'}")
    async with database.engine.begin() as connection:
        await connection.run_sync(METADATA.create_all)
    yield database
    await database.dispose()


class HandOffs:
    """How many calls went to a connection's thread while it was counting."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = aiosqlite.core.Connection._execute

        async def counted(connection: aiosqlite.core.Connection, fn: object, *args: object, **kwargs: object) -> object:
            self.count += 1
            return await original(connection, fn, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(aiosqlite.core.Connection, "_execute", counted)


class OtherWork:
    """Another task on the event loop, counting the turns it gets: one each time it wakes, every ``every`` s."""

    def __init__(self, every: float) -> None:
        self.every = every
        self.turns = 0

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            self.turns += 1


@contextlib.asynccontextmanager
async def other_work(every: float) -> AsyncIterator[OtherWork]:
    work = OtherWork(every)
    task = asyncio.create_task(work.run())
    await asyncio.sleep(0)  # it starts
    try:
        yield work
    finally:
        task.cancel()


async def test_the_engines_connect_with_one_trip_connections(database: Database) -> None:
    async with database.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        assert isinstance(raw.driver_connection, OneTripConnection)
        assert raw.driver_connection.inline_in_transaction
    async with database.reading_sessions() as session:
        raw = await (await session.connection()).get_raw_connection()
        assert isinstance(raw.driver_connection, OneTripConnection)
        assert not raw.driver_connection.inline_in_transaction


async def test_rows_counts_and_ids_come_back_as_the_driver_gave_them(database: Database) -> None:
    async with database.engine.begin() as connection:
        first = await connection.execute(VISITS.insert().values(code="A1", minutes=40))
        assert first.inserted_primary_key == (1,)
        many = await connection.execute(VISITS.insert(), [{"code": f"B{n}", "minutes": n} for n in range(5)])
        assert many.rowcount == 5
        returned = await connection.execute(
            VISITS.insert().values(code="C1", minutes=90).returning(VISITS.c.id, VISITS.c.code)
        )
        assert returned.one() == (7, "C1")
        updated = await connection.execute(VISITS.update().where(VISITS.c.minutes < 3).values(minutes=3))
        assert updated.rowcount == 3
    async with database.reading_sessions() as session:
        rows = (await session.execute(sa.select(VISITS.c.code, VISITS.c.minutes).order_by(VISITS.c.id))).all()
        assert [tuple(row) for row in rows] == [
            ("A1", 40), ("B0", 3), ("B1", 3), ("B2", 3), ("B3", 3), ("B4", 4), ("C1", 90)
        ]  # fmt: skip
        assert (await session.execute(sa.select(VISITS).where(VISITS.c.code == "none"))).first() is None


async def test_inside_a_writing_transaction_a_write_makes_no_hand_off_and_a_read_one(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    hand_offs = HandOffs(monkeypatch)
    async with database.engine.connect() as connection:
        await connection.begin()  # BEGIN IMMEDIATE: on the connection's thread
        began = hand_offs.count
        for n in range(10):
            await connection.execute(VISITS.insert().values(code=f"V{n}", minutes=n))
            await connection.execute(VISITS.update().where(VISITS.c.code == f"V{n}").values(minutes=n + 1))
        assert hand_offs.count == began, "writes inside the transaction went to the thread"
        for n in range(10):
            await connection.execute(sa.select(VISITS.c.id).where(VISITS.c.code == f"V{n}"))
        assert hand_offs.count == began + 10, "a read is one hand-off, not aiosqlite's four"
        await connection.commit()  # COMMIT (an fsync): on the thread again
        assert hand_offs.count == began + 11
    async with database.reading_sessions() as session:
        await session.execute(sa.select(sa.func.count()).select_from(VISITS))  # connects: its pragmas
    async with database.reading_sessions() as session:
        before = hand_offs.count
        await session.execute(sa.select(sa.func.count()).select_from(VISITS))
        # A reading engine's BEGIN and its SELECT: one hand-off each, not the four aiosqlite's cursor makes.
        assert hand_offs.count - before == 2


async def test_an_error_inside_the_transaction_is_the_drivers_and_nothing_of_it_is_kept(database: Database) -> None:
    async with database.engine.connect() as connection:
        await connection.begin()
        await connection.execute(VISITS.insert().values(code="D1", minutes=10))
        with pytest.raises(IntegrityError) as refused:
            await connection.execute(VISITS.insert().values(code="D1", minutes=20))
        assert isinstance(refused.value.orig, sqlite3.IntegrityError)
        await connection.rollback()
    async with database.reading_sessions() as session:
        assert (await session.execute(sa.select(sa.func.count()).select_from(VISITS))).scalar_one() == 0


async def test_waiting_for_another_process_write_lock_leaves_the_event_loop_free(
    database: Database, tmp_path: Path
) -> None:
    # Another process's writer, as a migration or `kapnet replay` would be: it holds the write lock for a while.
    other = sqlite3.connect(tmp_path / "visits.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO visit (code, minutes) VALUES ('E1', 5)")
    held = 1.0

    async def release_later() -> None:
        await asyncio.sleep(held)
        other.execute("COMMIT")

    async with other_work(every=0.05) as ticker:
        releasing = asyncio.create_task(release_later())
        began = time.monotonic()
        async with database.engine.begin() as connection:  # waits for the lock in BEGIN IMMEDIATE
            waited = time.monotonic() - began
            await connection.execute(VISITS.insert().values(code="E2", minutes=6))
    await releasing
    other.close()
    assert waited >= held * 0.9, "the write lock was not held"
    # The loop ran the ticker while BEGIN waited: a blocked loop would have ticked not at all.
    assert ticker.turns >= 5
    async with database.reading_sessions() as session:
        codes = (await session.execute(sa.select(VISITS.c.code).order_by(VISITS.c.id))).scalars().all()
    assert codes == ["E1", "E2"]


async def test_a_long_writing_transaction_still_gives_the_event_loop_turns(database: Database) -> None:
    # Inline statements make no hand-off, which was the event loop's chance to serve a request between two
    # statements: without the turns they give, a batch's whole transaction would hold the loop.
    async with database.engine.connect() as connection:
        await connection.begin()
        async with other_work(every=0) as other:
            before = other.turns
            for n in range(2000):
                await connection.execute(VISITS.insert().values(code=f"L{n}", minutes=n % 90))
            during = other.turns - before
        await connection.commit()
    # A turn every few milliseconds of the transaction's work (LOOP_TURN_SECONDS): 2,000 statements take far
    # longer than a few of those on any machine, and with no turns at all the count would be 0.
    assert during >= 3, during


async def test_a_streamed_result_reads_its_rows_from_the_one_trip(database: Database) -> None:
    # kapnet streams nothing today; a server-side cursor (AsyncConnection.stream) must still read every row once.
    async with database.engine.begin() as connection:
        await connection.execute(VISITS.insert(), [{"code": f"S{n}", "minutes": n} for n in range(250)])
    async with database.reading_sessions() as session:
        connection = await session.connection()
        streamed = await connection.stream(sa.select(VISITS.c.minutes).order_by(VISITS.c.id))
        minutes = [row.minutes async for row in streamed]
        assert minutes == list(range(250))
        partitions = await connection.stream(sa.select(VISITS.c.code).order_by(VISITS.c.id))
        sizes = [len(rows) async for rows in partitions.partitions(100)]
        assert sizes == [100, 100, 50]
        one = await connection.stream(sa.select(VISITS.c.code).where(VISITS.c.code == "S7"))
        assert (await one.fetchone()) == ("S7",) and (await one.fetchone()) is None


async def test_a_long_read_inside_a_writing_transaction_leaves_the_event_loop_free(database: Database) -> None:
    # A beat reads a site's whole history inside a writing transaction: a read's size has no bound, so it keeps
    # its hand-off, and the loop serves others while SQLite steps through it.
    counting = sa.text(
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1000000) SELECT count(*) FROM n"
    )
    async with database.engine.begin() as connection:
        await connection.execute(VISITS.insert().values(code="R1", minutes=1))  # the transaction holds the lock
        async with other_work(every=0.01) as other:
            before = other.turns
            began = time.monotonic()
            assert (await connection.execute(counting)).scalar_one() == 1_000_000
            took, during = time.monotonic() - began, other.turns - before
    # Every 10 ms of the read the other task had a turn; inline, it would have had none until the read ended.
    assert during >= (took / 0.01) * 0.3, (during, took)
